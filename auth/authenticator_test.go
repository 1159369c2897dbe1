package auth

import (
	"encoding/base64"
	"errors"
	"sync"
	"testing"
	"time"
)

// dir is an in-memory Directory that counts reads.
type dir struct {
	mu    sync.Mutex
	users map[string]User
	super map[string]bool
	reads int
}

func (d *dir) User(name string) (User, bool, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.reads++
	u, ok := d.users[name]
	return u, ok, nil
}

func (d *dir) RoleGrantsSuper(role string) (bool, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.super[role], nil
}

func (d *dir) put(u User) {
	d.mu.Lock()
	d.users[u.Name] = u
	d.mu.Unlock()
}

func hashed(t testing.TB, pw string) string {
	t.Helper()
	h, err := HashPassword(pw)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func basic(user, pw string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+pw))
}

func refusal(t *testing.T, err error, status int, msg string) {
	t.Helper()
	var r *Refusal
	if !errors.As(err, &r) || r.Status != status || r.Message != msg {
		t.Fatalf("got %v, want %d %q", err, status, msg)
	}
}

func TestPasswordHashes(t *testing.T) {
	h1, h2 := hashed(t, "s3cret"), hashed(t, "s3cret")
	if h1 == h2 {
		t.Fatal("two hashes of one password are equal: no salt")
	}
	for _, c := range []struct {
		hash, pw string
		ok       bool
		err      error
	}{
		{h1, "s3cret", true, nil}, {h2, "s3cret", true, nil}, {h1, "s3cre", false, nil}, {h1, "", false, nil},
		{"s3cret", "s3cret", false, ErrBadHash}, {"$argon2id$v=19$m=0,t=1,p=1$AAAA$AAAA", "x", false, ErrBadHash},
		{"$argon2id$v=19$m=99999999,t=1,p=1$AAAA$AAAA", "x", false, ErrBadHash},
	} {
		ok, err := CheckPassword(c.hash, c.pw)
		if ok != c.ok || !errors.Is(err, c.err) {
			t.Errorf("CheckPassword(%q, %q) = %v %v", c.hash, c.pw, ok, err)
		}
	}
}

func TestBasicLoginCacheFollowsTheUser(t *testing.T) {
	d := &dir{users: map[string]User{}, super: map[string]bool{"ops": true}}
	d.put(User{Name: "ann", Role: SuperUser, Super: true, Active: true, Hash: hashed(t, "pw1"), ID: "1"})
	a := NewAuthenticator(NewVerifier(Limits{}, pub(newKey(t))), d)

	c, err := a.Authenticate(basic("ann", "pw1"))
	if err != nil || c != (Caller{User: "ann", Role: SuperUser, Super: true}) {
		t.Fatalf("login: %+v %v", c, err)
	}
	// Cached: the next request reads nothing and hashes nothing.
	reads := d.reads
	start := time.Now()
	for i := 0; i < 100; i++ {
		if _, err := a.Authenticate(basic("ann", "pw1")); err != nil {
			t.Fatal(err)
		}
	}
	if d.reads != reads {
		t.Fatalf("cached logins read the directory %d times", d.reads-reads)
	}
	if el := time.Since(start); el > 2*time.Second {
		t.Fatalf("100 cached logins took %v: the slow hash ran again", el)
	}
	refusal(t, func() error { _, err := a.Authenticate(basic("ann", "pw2")); return err }(), 401, MsgLoginFailed)

	// A changed password: the old one is refused at once, the new one works.
	d.put(User{Name: "ann", Role: SuperUser, Super: true, Active: true, Hash: hashed(t, "pw2"), ID: "1"})
	a.Invalidate()
	refusal(t, func() error { _, err := a.Authenticate(basic("ann", "pw1")); return err }(), 401, MsgLoginFailed)
	if _, err := a.Authenticate(basic("ann", "pw2")); err != nil {
		t.Fatal(err)
	}
	// A changed role applies to the next request.
	d.put(User{Name: "ann", Role: "ops", Super: false, Active: true, Hash: d.users["ann"].Hash, ID: "1"})
	a.Invalidate()
	if c, err := a.Authenticate(basic("ann", "pw2")); err != nil || c.Super || c.Role != "ops" {
		t.Fatalf("after role change: %+v %v", c, err)
	}
	// Deactivated, then dropped and re-created with the same password.
	u := d.users["ann"]
	u.Active = false
	d.put(u)
	a.Invalidate()
	refusal(t, func() error { _, err := a.Authenticate(basic("ann", "pw2")); return err }(), 401, MsgLoginFailed)
	d.mu.Lock()
	delete(d.users, "ann")
	d.mu.Unlock()
	a.Invalidate()
	refusal(t, func() error { _, err := a.Authenticate(basic("ann", "pw2")); return err }(), 401, MsgLoginFailed)
	if _, err := a.LookupUser("ann"); err == nil {
		t.Fatal("LookupUser found a dropped user")
	}
}

func TestTokensOfADroppedUserStopWorking(t *testing.T) {
	key := newKey(t)
	d := &dir{users: map[string]User{}, super: map[string]bool{"ops": true}}
	d.put(User{Name: "ann", Role: ClusterUser, Active: true, Hash: hashed(t, "pw"), ID: "1"})
	a := NewAuthenticator(NewVerifier(Limits{}, pub(key)), d)
	tok, err := MintToken(key, Token{User: "ann", TTL: time.Hour, UserID: "1"})
	if err != nil {
		t.Fatal(err)
	}
	if c, err := a.Authenticate("Bearer " + tok); err != nil || c.Role != ClusterUser || c.Super {
		t.Fatalf("token: %+v %v", c, err)
	}
	// Re-created under the same name: a new record id, the old token is dead.
	d.put(User{Name: "ann", Role: SuperUser, Super: true, Active: true, Hash: hashed(t, "pw"), ID: "2"})
	a.Invalidate()
	refusal(t, func() error { _, err := a.Authenticate("Bearer " + tok); return err }(), 401, "Unauthorized: the token's user 'ann' no longer exists")
	// A role-claim token (clusterd token) takes a stored role's super_user.
	ops, _ := Mint(key, "svc", "ops", time.Hour)
	if c, err := a.Authenticate("Bearer " + ops); err != nil || !c.Super {
		t.Fatalf("stored super role: %+v %v", c, err)
	}
	other, _ := Mint(key, "svc", "readers", time.Hour)
	if c, err := a.Authenticate("Bearer " + other); err != nil || c.Super {
		t.Fatalf("unknown role: %+v %v", c, err)
	}
}

func TestWrongPasswordsAreSlowedDownPerUser(t *testing.T) {
	d := &dir{users: map[string]User{}}
	d.put(User{Name: "ann", Role: SuperUser, Super: true, Active: true, Hash: hashed(t, "right"), ID: "1"})
	d.put(User{Name: "bob", Role: SuperUser, Super: true, Active: true, Hash: hashed(t, "right"), ID: "2"})
	a := NewAuthenticator(NewVerifier(Limits{}, pub(newKey(t))), d)
	now := time.Unix(1_800_000_000, 0)
	a.now = func() time.Time { return now }
	// ann's working credentials, verified before the attack, keep working.
	if _, err := a.Authenticate(basic("ann", "right")); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < freeFailures; i++ {
		refusal(t, func() error { _, err := a.Authenticate(basic("ann", "guess")); return err }(), 401, MsgLoginFailed)
	}
	refusal(t, func() error { _, err := a.Authenticate(basic("ann", "guess")); return err }(), 429, "Too many failed logins for user 'ann'; retry in 1s")
	if _, err := a.Authenticate(basic("ann", "right")); err != nil {
		t.Fatalf("cached credentials during the lock: %v", err)
	}
	if _, err := a.Authenticate(basic("bob", "right")); err != nil {
		t.Fatalf("another user during ann's lock: %v", err)
	}
	// The lock doubles with each further failure, up to a minute.
	now = now.Add(time.Second)
	refusal(t, func() error { _, err := a.Authenticate(basic("ann", "guess")); return err }(), 401, MsgLoginFailed)
	refusal(t, func() error { _, err := a.Authenticate(basic("ann", "guess2")); return err }(), 429, "Too many failed logins for user 'ann'; retry in 2s")
	for i := 0; i < 10; i++ {
		now = now.Add(time.Hour)
		_, _ = a.Authenticate(basic("ann", "guess"))
	}
	refusal(t, func() error { _, err := a.Authenticate(basic("ann", "x")); return err }(), 429, "Too many failed logins for user 'ann'; retry in 1m0s")
	// A right password after the lock resets the count.
	now = now.Add(time.Minute)
	a.creds = map[[32]byte]credEntry{}
	if _, err := a.Authenticate(basic("ann", "right")); err != nil {
		t.Fatal(err)
	}
	refusal(t, func() error { _, err := a.Authenticate(basic("ann", "guess")); return err }(), 401, MsgLoginFailed)
	// Unknown users are refused the same way and not tracked.
	for i := 0; i < 3*freeFailures; i++ {
		refusal(t, func() error { _, err := a.Authenticate(basic("nobody", "x")); return err }(), 401, MsgLoginFailed)
	}
	if len(a.failures) != 1 {
		t.Fatalf("failure records: %d", len(a.failures))
	}
}
