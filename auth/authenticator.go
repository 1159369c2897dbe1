package auth

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"hash"
	"runtime"
	"strings"
	"sync"
	"time"
)

// User is a stored user as the Authenticator needs it.
type User struct {
	Name string
	Role string
	// Super is the role's permission.super_user.
	Super  bool
	Active bool
	// Hash is the argon2id hash of the password (HashPassword).
	Hash string
	// ID changes when a user is dropped and re-created under the same name,
	// so that tokens and cached credentials of the old one stop working.
	ID string
}

// Directory reads users and roles (the node keeps them in Badger).
type Directory interface {
	// User returns the user called name with its role resolved.
	User(name string) (User, bool, error)
	// RoleGrantsSuper reports whether a stored role of that name has
	// permission.super_user (for tokens that carry a role claim).
	RoleGrantsSuper(role string) (bool, error)
}

// Failed-login slow-down: after this many wrong passwords in a row for one
// user, each further attempt that is not already known good waits out a
// lock that starts at lockBase and doubles up to lockMax.
const (
	freeFailures = 5
	lockBase     = time.Second
	lockMax      = time.Minute
)

// Authenticator turns an Authorization header into a Caller: Basic
// credentials against the Directory, Bearer tokens against the Verifier.
// Safe for concurrent use.
//
// Verified Basic credentials are cached under an HMAC of name and password
// (a process-local key: nothing in memory reveals the password), together
// with the user's record id and hash at verification time; a later request
// with the same credentials checks those against the user as stored now, so
// a changed password, a dropped or re-created user is refused at once,
// while the slow hash is paid once per credential, not per request. The
// users themselves are cached between changes (Invalidate).
type Authenticator struct {
	v     *Verifier
	dir   Directory
	key   []byte
	now   func() time.Time
	slots chan struct{} // bounds concurrent argon2 runs (memory, CPU)
	macs  sync.Pool     // HMACs keyed with key: a new one costs allocations per request

	mu       sync.Mutex
	gen      uint64
	users    map[string]userEntry
	roles    map[string]bool
	creds    map[[sha256.Size]byte]credEntry
	failures map[string]*failState
}

type userEntry struct {
	u  User
	ok bool
}

type credEntry struct {
	id, hash string
}

type failState struct {
	count int
	until time.Time
}

const credCacheMax = 4096

// NewAuthenticator checks tokens with v and Basic credentials against dir
// (nil: no users, every Basic login fails).
func NewAuthenticator(v *Verifier, dir Directory) *Authenticator {
	key := make([]byte, 32)
	_, _ = rand.Read(key)
	// At most half the CPUs hash at once (one on a small machine): a flood
	// of wrong or unknown credentials then slows logins that are not yet
	// cached, never the node's other work.
	n := max(1, min(runtime.GOMAXPROCS(0)/2, 4))
	a := &Authenticator{
		v: v, dir: dir, key: key, now: time.Now, slots: make(chan struct{}, n),
		users: map[string]userEntry{}, roles: map[string]bool{},
		creds: map[[sha256.Size]byte]credEntry{}, failures: map[string]*failState{},
	}
	a.macs.New = func() any { return hmac.New(sha256.New, key) }
	return a
}

// Verifier is the token verifier in use.
func (a *Authenticator) Verifier() *Verifier { return a.v }

// Invalidate forgets cached users and roles; the node calls it after every
// committed change to users or roles, so that the change applies to the
// next request.
func (a *Authenticator) Invalidate() {
	a.mu.Lock()
	a.gen++
	clear(a.users)
	clear(a.roles)
	a.mu.Unlock()
}

// Authenticate reads an Authorization header value. Errors are *Refusal:
// 401 "Must login" without one, 401 "Login failed" for wrong Basic
// credentials, 429 while a user's failed logins are slowed down, 401
// "Unauthorized: <reason>" for a token that is not accepted.
func (a *Authenticator) Authenticate(header string) (Caller, error) {
	header = strings.TrimSpace(header)
	if header == "" {
		return Caller{}, refuse(401, MsgMustLogin)
	}
	scheme, rest, _ := strings.Cut(header, " ")
	rest = strings.TrimSpace(rest)
	switch {
	case strings.EqualFold(scheme, "Basic"):
		raw, err := base64.StdEncoding.DecodeString(rest)
		if err != nil {
			return Caller{}, refuse(401, MsgLoginFailed)
		}
		name, password, ok := strings.Cut(string(raw), ":")
		if !ok || name == "" {
			return Caller{}, refuse(401, MsgLoginFailed)
		}
		c, _, err := a.Login(name, password)
		return c, err
	case strings.EqualFold(scheme, "Bearer"):
		c, _, err := a.Token(rest, KindOperation)
		return c, err
	default:
		return Caller{}, refuse(401, "Unauthorized: Authorization header must be 'Basic <base64 user:password>' or 'Bearer <token>'")
	}
}

// Token checks a token of the given kind and returns its caller. A token
// tied to a stored user (create_authentication_tokens) takes that user's
// current role, and stops working once the user is dropped or deactivated.
func (a *Authenticator) Token(tok, kind string) (Caller, Verified, error) {
	vt, err := a.v.Verify(tok)
	if err != nil {
		return Caller{}, Verified{}, refuse(401, "Unauthorized: "+err.Error())
	}
	if vt.Kind != kind {
		if vt.Kind == KindRefresh {
			return Caller{}, vt, refuse(401, "Unauthorized: a refresh token only mints operation tokens (refresh_operation_token); send the operation token")
		}
		return Caller{}, vt, refuse(401, "Unauthorized: an operation token cannot refresh; send the refresh token")
	}
	if vt.UserID != "" {
		u, ok, err := a.user(vt.User)
		if err != nil {
			return Caller{}, vt, err
		}
		if !ok || u.ID != vt.UserID {
			return Caller{}, vt, refuse(401, fmt.Sprintf("Unauthorized: the token's user '%s' no longer exists", vt.User))
		}
		if !u.Active {
			return Caller{}, vt, refuse(401, fmt.Sprintf("Unauthorized: user '%s' is not active", vt.User))
		}
		return Caller{User: u.Name, Role: u.Role, Super: u.Super}, vt, nil
	}
	super := vt.Role == SuperUser
	if !super {
		if super, err = a.roleGrantsSuper(vt.Role); err != nil {
			return Caller{}, vt, err
		}
	}
	return Caller{User: vt.User, Role: vt.Role, Super: super}, vt, nil
}

// Login checks a user's password: 401 "Login failed" when the user does not
// exist, is not active, or the password is wrong; 429 while the user's
// failed logins are slowed down (credentials already verified still work).
func (a *Authenticator) Login(name, password string) (Caller, User, error) {
	u, ok, err := a.user(name)
	if err != nil {
		return Caller{}, User{}, err
	}
	ck := a.credKey(name, password)
	if ok {
		a.mu.Lock()
		e, hit := a.creds[ck]
		a.mu.Unlock()
		if hit && e.id == u.ID && e.hash == u.Hash {
			if !u.Active {
				return Caller{}, User{}, refuse(401, MsgLoginFailed)
			}
			return Caller{User: u.Name, Role: u.Role, Super: u.Super}, u, nil
		}
		if wait := a.locked(name); wait > 0 {
			return Caller{}, User{}, refuse(429, fmt.Sprintf("Too many failed logins for user '%s'; retry in %s", name, roundUp(wait)))
		}
	}
	hash := u.Hash
	if !ok {
		hash = dummyHash()
	}
	a.slots <- struct{}{}
	good, herr := CheckPassword(hash, password)
	<-a.slots
	if !ok || !good || herr != nil {
		if ok {
			a.failed(name)
		}
		return Caller{}, User{}, refuse(401, MsgLoginFailed)
	}
	a.mu.Lock()
	delete(a.failures, name)
	if len(a.creds) >= credCacheMax {
		clear(a.creds)
	}
	a.creds[ck] = credEntry{id: u.ID, hash: u.Hash}
	a.mu.Unlock()
	if !u.Active {
		return Caller{}, User{}, refuse(401, MsgLoginFailed)
	}
	return Caller{User: u.Name, Role: u.Role, Super: u.Super}, u, nil
}

// LookupUser returns the caller for an active stored user, without a
// password: for transports that authenticated the user another way (a
// verified client certificate). 401 "Login failed" when there is no such
// active user.
func (a *Authenticator) LookupUser(name string) (Caller, error) {
	u, ok, err := a.user(name)
	if err != nil {
		return Caller{}, err
	}
	if !ok || !u.Active {
		return Caller{}, refuse(401, MsgLoginFailed)
	}
	return Caller{User: u.Name, Role: u.Role, Super: u.Super}, nil
}

// User returns the stored user called name (cached between changes).
func (a *Authenticator) User(name string) (User, bool, error) { return a.user(name) }

func (a *Authenticator) user(name string) (User, bool, error) {
	if a.dir == nil {
		return User{}, false, nil
	}
	a.mu.Lock()
	e, hit := a.users[name]
	gen := a.gen
	a.mu.Unlock()
	if hit {
		return e.u, e.ok, nil
	}
	u, ok, err := a.dir.User(name)
	if err != nil {
		return User{}, false, fmt.Errorf("read user '%s': %w", name, err)
	}
	a.mu.Lock()
	// A change committed while we read must not be hidden by what we read.
	if a.gen == gen && (ok || len(a.users) < credCacheMax) {
		if len(a.users) >= credCacheMax {
			clear(a.users)
		}
		a.users[name] = userEntry{u: u, ok: ok}
	}
	a.mu.Unlock()
	return u, ok, nil
}

func (a *Authenticator) roleGrantsSuper(role string) (bool, error) {
	if a.dir == nil || role == "" {
		return false, nil
	}
	a.mu.Lock()
	s, hit := a.roles[role]
	gen := a.gen
	a.mu.Unlock()
	if hit {
		return s, nil
	}
	s, err := a.dir.RoleGrantsSuper(role)
	if err != nil {
		return false, fmt.Errorf("read role '%s': %w", role, err)
	}
	a.mu.Lock()
	if a.gen == gen && len(a.roles) < credCacheMax {
		a.roles[role] = s
	}
	a.mu.Unlock()
	return s, nil
}

func (a *Authenticator) credKey(name, password string) [sha256.Size]byte {
	m := a.macs.Get().(hash.Hash)
	defer a.macs.Put(m)
	m.Reset()
	m.Write([]byte(name))
	m.Write([]byte{0})
	m.Write([]byte(password))
	var k [sha256.Size]byte
	m.Sum(k[:0])
	return k
}

// locked is how long the user's failed logins still lock new attempts.
func (a *Authenticator) locked(name string) time.Duration {
	a.mu.Lock()
	defer a.mu.Unlock()
	f := a.failures[name]
	if f == nil {
		return 0
	}
	return f.until.Sub(a.now())
}

// failed records a wrong password for an existing user (the map is bounded
// by the number of users: unknown names are not tracked).
func (a *Authenticator) failed(name string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	f := a.failures[name]
	if f == nil {
		f = &failState{}
		a.failures[name] = f
	}
	f.count++
	if f.count >= freeFailures {
		d := lockBase << min(f.count-freeFailures, 6)
		if d > lockMax {
			d = lockMax
		}
		f.until = a.now().Add(d)
	}
}

func roundUp(d time.Duration) time.Duration {
	if t := d.Truncate(time.Second); t != d {
		return t + time.Second
	}
	return d
}
