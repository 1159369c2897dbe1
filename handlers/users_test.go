package handlers

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"

	"strings"
	"testing"
	"time"

	"github.com/clusterd/clusterd/auth"
	"github.com/clusterd/clusterd/events"
	"github.com/clusterd/clusterd/storage"
)

func newUserOps(t testing.TB) *UserOps {
	t.Helper()
	st, err := storage.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	pub, key, _ := ed25519.GenerateKey(rand.Reader)
	u := &UserOps{Store: st, IssuerKey: key, OperationTTL: time.Hour, RefreshTTL: 2 * time.Hour}
	u.Auth = auth.NewAuthenticator(auth.NewVerifier(auth.Limits{}, pub), u)
	if created, _, err := u.Bootstrap("admin", "admin-pw"); err != nil || !created {
		t.Fatalf("bootstrap: %v %v", created, err)
	}
	return u
}

var admin = events.Caller{User: "admin", Role: auth.SuperUser, Super: true}

func run(u *UserOps, op string, c events.Caller, body string) (any, error) {
	for _, o := range u.Operations() {
		if o.Name == op {
			return o.Run(context.Background(), c, []byte(body))
		}
	}
	panic("no operation " + op)
}

func roleID(t *testing.T, u *UserOps, name string) string {
	t.Helper()
	r, ok, err := u.Store.RoleNamed(name)
	if err != nil || !ok {
		t.Fatalf("role %s: %v %v", name, ok, err)
	}
	return r.ID
}

// Every message of the user and role operations, in order, on one store:
// each case sees what the cases before it did.
func TestUserAndRoleOperationMessages(t *testing.T) {
	u := newUserOps(t)
	superID, clusterID := roleID(t, u, auth.SuperUser), roleID(t, u, auth.ClusterUser)
	var opsID string
	cases := []struct {
		name, op, body string
		status         int
		want           string // error message, or a substring of the JSON reply
	}{
		{"add: everything missing", "add_user", `{}`, 400, "'username' is required. 'password' is required. 'role' is required. 'active' is required"},
		{"add: wrong types", "add_user", `{"username":1,"password":true,"role":[],"active":"maybe"}`, 400, "'username' must be a string. 'password' must be a string. 'role' must be a string. 'active' must be a boolean"},
		{"add: empty", "add_user", `{"username":"","password":"","role":"","active":true}`, 400, "'username' is not allowed to be empty. 'password' is not allowed to be empty. 'role' is not allowed to be empty"},
		{"add: colon", "add_user", `{"username":"a:b","password":"p","role":"super_user","active":true}`, 400, "'username' must not contain ':'"},
		{"add: space", "add_user", `{"username":"a b","password":"p","role":"super_user","active":true}`, 400, "'username' must not contain spaces or control characters"},
		{"add: NBSP", "add_user", `{"username":"a\u00a0b","password":"p","role":"super_user","active":true}`, 400, "'username' must not contain spaces or control characters"},
		{"add: too long", "add_user", `{"username":"` + strings.Repeat("x", 257) + `","password":"p","role":"super_user","active":true}`, 400, "'username' length must be less than or equal to 256 characters long"},
		{"add: unknown role", "add_user", `{"username":"bob","password":"pw","role":"nope","active":true}`, 404, "Role 'nope' was not found"},
		{"add: bob", "add_user", `{"username":"bob","password":"pw","role":"cluster_user","active":true}`, 200, `{"message":"bob successfully added"}`},
		{"add: role by id, active as string", "add_user", `{"username":"carol","password":"pw","role":"` + superID + `","active":"true"}`, 200, `{"message":"carol successfully added"}`},
		{"add: exists", "add_user", `{"username":"bob","password":"other","role":"cluster_user","active":true}`, 409, "User bob already exists"},
		{"alter: nothing", "alter_user", `{"username":"bob"}`, 400, "nothing to update, must supply active, role or password to update"},
		{"alter: no name", "alter_user", `{"active":false}`, 400, "'username' is required"},
		{"alter: bad fields", "alter_user", `{"username":"bob","password":"","role":"","active":3}`, 400, "'password' is not allowed to be empty. 'role' is not allowed to be empty. 'active' must be a boolean"},
		{"alter: unknown user", "alter_user", `{"username":"zed","active":false}`, 404, "User zed does not exist"},
		{"alter: unknown role", "alter_user", `{"username":"bob","role":"nope"}`, 404, "Role 'nope' was not found"},
		{"alter: bob", "alter_user", `{"username":"bob","password":"pw2"}`, 200, `"message":"updated 1 of 1 records","new_attributes":[]`},
		{"drop: missing", "drop_user", `{}`, 400, "'username' is required"},
		{"drop: unknown", "drop_user", `{"username":"zed"}`, 404, "User zed does not exist"},
		{"role: missing", "add_role", `{}`, 400, "'role' is required. 'permission' is required"},
		{"role: bad permission", "add_role", `{"role":"ops","permission":[]}`, 400, "'permission' must be of type object"},
		{"role: bad flags", "add_role", `{"role":"ops","permission":{"super_user":"yes","cluster_user":1,"structure_user":{}}}`, 400,
			"'permission.super_user' must be a boolean. 'permission.cluster_user' must be a boolean. 'permission.structure_user' must be a boolean"},
		{"role: built-in name", "add_role", `{"role":"super_user","permission":{"super_user":true}}`, 409, "Role 'super_user' already exists"},
		{"role: ops", "add_role", `{"role":"ops","permission":{"super_user":true,"data":{"tables":{"dog":{"read":true}}}}}`, 200, `"role":"ops"`},
		{"alter role: missing", "alter_role", `{}`, 400, "'id' is required. 'permission' is required"},
		{"alter role: unknown", "alter_role", `{"id":"nope","permission":{}}`, 404, "Role with id 'nope' was not found"},
		{"alter role: built-in flag", "alter_role", `{"id":"` + superID + `","permission":{"super_user":false}}`, 400, "Role 'super_user' is built in: its name and its super_user and cluster_user permissions cannot be changed"},
		{"alter role: built-in rename", "alter_role", `{"id":"` + clusterID + `","role":"cu","permission":{"cluster_user":true}}`, 400, "Role 'cluster_user' is built in: its name and its super_user and cluster_user permissions cannot be changed"},
		{"drop role: missing", "drop_role", `{}`, 400, "'id' is required"},
		{"drop role: unknown", "drop_role", `{"id":"nope"}`, 404, "Role with id 'nope' was not found"},
		{"drop role: built-in", "drop_role", `{"id":"` + clusterID + `"}`, 400, "Role 'cluster_user' is built in and cannot be dropped"},
		{"list users", "list_users", `{}`, 200, `"username":"bob","active":true,"role":{"role":"cluster_user"`},
		{"list roles", "list_roles", `{}`, 200, `"role":"ops"`},
		{"drop: bob", "drop_user", `{"username":"bob"}`, 200, `{"message":"bob successfully deleted"}`},
		{"drop: carol", "drop_user", `{"username":"carol"}`, 200, `{"message":"carol successfully deleted"}`},
		// admin is now the only super_user.
		{"drop the last super_user", "drop_user", `{"username":"admin"}`, 409, "'admin' is the last active super_user: add another super_user first, or nobody can manage users or run clustering operations"},
		{"deactivate the last super_user", "alter_user", `{"username":"admin","active":false}`, 409, "'admin' is the last active super_user: add another super_user first, or nobody can manage users or run clustering operations"},
		{"demote the last super_user", "alter_user", `{"username":"admin","role":"cluster_user"}`, 409, "'admin' is the last active super_user: add another super_user first, or nobody can manage users or run clustering operations"},
		{"tokens: one credential", "create_authentication_tokens", `{"username":"admin"}`, 400, "'password' is required"},
		{"tokens: other credential", "create_authentication_tokens", `{"password":"x"}`, 400, "'username' is required"},
		{"tokens: bad types", "create_authentication_tokens", `{"username":1,"password":""}`, 400, "'username' must be a string. 'password' is not allowed to be empty"},
		{"tokens: wrong password", "create_authentication_tokens", `{"username":"admin","password":"x"}`, 401, "Login failed"},
		{"tokens: unknown user", "create_authentication_tokens", `{"username":"zed","password":"x"}`, 401, "Login failed"},
		{"tokens: no credentials at all", "create_authentication_tokens", `{}`, 401, "Must login"},
		{"tokens", "create_authentication_tokens", `{"username":"admin","password":"admin-pw"}`, 200, `"operation_token":"ey`},
		{"tokens: expires_in junk", "create_authentication_tokens", `{"username":"admin","password":"admin-pw","expires_in":"soon"}`, 400, `'expires_in' must be a positive number of seconds or a time like "1d", "2h" or "30m"`},
		{"tokens: expires_in negative", "create_authentication_tokens", `{"username":"admin","password":"admin-pw","expires_in":-5}`, 400, `'expires_in' must be a positive number of seconds or a time like "1d", "2h" or "30m"`},
		{"tokens: expires_in beyond the bound", "create_authentication_tokens", `{"username":"admin","password":"admin-pw","expires_in":"2d"}`, 400, "'expires_in' must be at most 24h0m0s (auth.maxTokenTTL)"},
		{"tokens: expires_in in ms", "create_authentication_tokens", `{"username":"admin","password":"admin-pw","expires_in":"500"}`, 400, "'expires_in' must be at least 1s (a number is seconds; a string without a unit is milliseconds)"},
		{"refresh: nothing", "refresh_operation_token", `{}`, 400, "'refresh_token' is required"},
		{"refresh: bad type", "refresh_operation_token", `{"refresh_token":5}`, 400, "'refresh_token' must be a string"},
		{"refresh: junk", "refresh_operation_token", `{"refresh_token":"junk"}`, 401, "Unauthorized: token is malformed (expected a signed JWT: header.payload.signature)"},
		{"not JSON", "add_user", `{"username":`, 400, "Invalid JSON body: unexpected EOF"},
		{"not an object", "add_role", `[1]`, 400, "Invalid JSON body: expected a JSON object, got an array"},
	}
	for _, c := range cases {
		before := u.Store.Commits()
		got, err := run(u, c.op, admin, c.body)
		if c.status == 200 {
			if err != nil {
				t.Fatalf("%s: %v", c.name, err)
			}
			b, _ := json.Marshal(got)
			if !strings.Contains(string(b), c.want) {
				t.Fatalf("%s: reply %s lacks %s", c.name, b, c.want)
			}
			if c.op == "add_role" {
				opsID = got.(RoleRecord).ID
			}
			for _, secret := range []string{`"hash"`, "argon2", `"password"`, "pw2", "admin-pw"} {
				if strings.Contains(string(b), secret) {
					t.Fatalf("%s: reply %s shows %q", c.name, b, secret)
				}
			}
			continue
		}
		e := events.AsError(err)
		if err == nil || e.Status != c.status || e.Message != c.want {
			t.Fatalf("%s: got %v (%d), want %d %q", c.name, err, e.Status, c.status, c.want)
		}
		if u.Store.Commits() != before {
			t.Fatalf("%s: a refused request wrote to the store", c.name)
		}
	}
	// A role with users cannot be dropped; without, it can.
	if _, err := run(u, "add_user", admin, `{"username":"dan","password":"pw","role":"ops","active":true}`); err != nil {
		t.Fatal(err)
	}
	_, err := run(u, "drop_role", admin, `{"id":"`+opsID+`"}`)
	if e := events.AsError(err); e.Status != 409 || e.Message != "Cannot drop role ops as it has user(s) tied to this role" {
		t.Fatalf("drop a role in use: %v", err)
	}
	// Renaming a role takes its users along; dan (ops: super) now lets admin go.
	if _, err := run(u, "alter_role", admin, `{"id":"`+opsID+`","role":"operators","permission":{"super_user":true}}`); err != nil {
		t.Fatal(err)
	}
	if d, _, _ := u.Store.User("dan"); d.Role != "operators" {
		t.Fatalf("dan's role after the rename: %q", d.Role)
	}
	if r, err := run(u, "alter_role", admin, `{"id":"`+opsID+`","permission":{"super_user":false}}`); err != nil || r.(RoleRecord).Role != "operators" {
		t.Fatalf("alter role: %+v %v", r, err)
	}
	if ok, _ := u.RoleGrantsSuper("operators"); ok {
		t.Fatal("operators still grants super_user")
	}
	if _, err := run(u, "drop_user", admin, `{"username":"dan"}`); err != nil {
		t.Fatal(err)
	}
	if r, err := run(u, "drop_role", admin, `{"id":"`+opsID+`"}`); err != nil || r.(MessageReply).Message != "operators successfully deleted" {
		t.Fatalf("drop role: %v %v", r, err)
	}
}

// user_info shows the caller, whatever its role; a role-claim caller with no
// stored user is shown with its claim.
func TestUserInfo(t *testing.T) {
	u := newUserOps(t)
	got, err := run(u, "user_info", events.Caller{User: "admin", Role: auth.SuperUser, Super: true}, `{}`)
	if err != nil || got.(UserRecord).Username != "admin" || got.(UserRecord).Role.Role != auth.SuperUser || got.(UserRecord).CreatedTime == 0 {
		t.Fatalf("admin: %+v %v", got, err)
	}
	got, err = run(u, "user_info", events.Caller{User: "svc", Role: "readers"}, ``)
	if err != nil || got.(UserRecord).Username != "svc" || got.(UserRecord).Role.Role != "readers" || string(got.(UserRecord).Role.Permission) != `{"super_user":false}` {
		t.Fatalf("role claim: %+v %v", got, err)
	}
}

// A first start creates the admin once; a restart (or a store whose users
// were all dropped) does not create it again, and the built-in roles are
// restored if missing.
func TestBootstrapCreatesTheAdminOnce(t *testing.T) {
	u := newUserOps(t)
	created, generated, err := u.Bootstrap("admin", "")
	if err != nil || created || generated != "" {
		t.Fatalf("second bootstrap: %v %q %v", created, generated, err)
	}
	st, err := storage.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	v := &UserOps{Store: st}
	v.Auth = auth.NewAuthenticator(auth.NewVerifier(auth.Limits{}), v)
	created, generated, err = v.Bootstrap("root", "")
	if err != nil || !created || len(generated) < 20 {
		t.Fatalf("generated admin: %v %q %v", created, generated, err)
	}
	if c, err := v.Auth.Authenticate("Basic " + b64("root:"+generated)); err != nil || !c.Super {
		t.Fatalf("generated password does not log in: %+v %v", c, err)
	}
	x, _, _ := st.User("root")
	if strings.Contains(x.Hash, generated) || !strings.HasPrefix(x.Hash, "$argon2id$") {
		t.Fatalf("stored hash %q", x.Hash)
	}
}

func b64(s string) string {
	return base64.StdEncoding.EncodeToString([]byte(s))
}

// expires_in sets the operation token's lifetime, HarperDB's way: a number
// is seconds, a string carries its unit (milliseconds without one).
func TestCreateTokensExpiresIn(t *testing.T) {
	u := newUserOps(t)
	for body, want := range map[string]time.Duration{
		`"expires_in":3600`:      time.Hour,
		`"expires_in":"1h"`:      time.Hour,
		`"expires_in":"90 mins"`: 90 * time.Minute,
		`"expires_in":"1d"`:      24 * time.Hour,
		`"expires_in":"2000ms"`:  2 * time.Second,
		`"expires_in":"7200000"`: 2 * time.Hour,
	} {
		got, err := run(u, "create_authentication_tokens", events.Caller{}, `{"username":"admin","password":"admin-pw",`+body+`}`)
		if err != nil {
			t.Fatalf("%s: %v", body, err)
		}
		v, err := u.Auth.Verifier().Verify(got.(TokensReply).OperationToken)
		if err != nil {
			t.Fatalf("%s: %v", body, err)
		}
		// Token times are whole seconds.
		if life := time.Until(v.Expires); life > want || life < want-2*time.Second {
			t.Errorf("%s: lives %v, want %v", body, life, want)
		}
	}
}
