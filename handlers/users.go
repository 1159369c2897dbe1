package handlers

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/clusterd/clusterd/auth"
	"github.com/clusterd/clusterd/events"
	"github.com/clusterd/clusterd/storage"
)

// UserOps serves HarperDB's user, role and token operations against the
// users and roles kept in the state store, and is the auth.Directory the
// node authenticates callers with. Users and roles belong to this node (they
// are not replicated): a mesh's nodes each keep their own.
type UserOps struct {
	Store *storage.Store
	// Auth is told of every change (Invalidate) and checks the passwords of
	// create_authentication_tokens.
	Auth *auth.Authenticator
	// IssuerKey signs the tokens create_authentication_tokens hands out.
	IssuerKey    ed25519.PrivateKey
	OperationTTL time.Duration
	RefreshTTL   time.Duration
}

// metaAdminCreated marks that a first start created the admin user: a store
// whose users were all dropped does not get a new admin on restart.
const metaAdminCreated = "admin-created"

var (
	usernameField   = Field{Name: "username", Kind: kString, Required: true, NonEmpty: true, MaxLen: 256, Check: checkUsername}
	permissionFlags = Schema{
		{Name: "super_user", Kind: kBool},
		{Name: "cluster_user", Kind: kBool},
		{Name: "structure_user", Kind: kBool},
	}
	addUserSchema = Schema{
		usernameField,
		{Name: "password", Kind: kString, Required: true, NonEmpty: true, MaxLen: 1024},
		{Name: "role", Kind: kString, Required: true, NonEmpty: true, MaxLen: 256},
		{Name: "active", Kind: kBool, Required: true},
	}
	alterUserSchema = Schema{
		usernameField,
		{Name: "password", Kind: kString, NonEmpty: true, MaxLen: 1024},
		{Name: "role", Kind: kString, NonEmpty: true, MaxLen: 256},
		{Name: "active", Kind: kBool},
	}
	dropUserSchema = Schema{usernameField}
	addRoleSchema  = Schema{
		{Name: "role", Kind: kString, Required: true, NonEmpty: true, MaxLen: 256, Check: checkRoleName},
		{Name: "permission", Kind: kObject, Required: true, Items: permissionFlags},
	}
	alterRoleSchema = Schema{
		{Name: "id", Kind: kString, Required: true, NonEmpty: true, MaxLen: 256},
		{Name: "role", Kind: kString, NonEmpty: true, MaxLen: 256, Check: checkRoleName},
		{Name: "permission", Kind: kObject, Required: true, Items: permissionFlags},
	}
	dropRoleSchema = Schema{
		{Name: "id", Kind: kString, Required: true, NonEmpty: true, MaxLen: 256},
	}
	createTokensSchema = Schema{
		{Name: "username", Kind: kString, NonEmpty: true, MaxLen: 256},
		{Name: "password", Kind: kString, NonEmpty: true, MaxLen: 1024},
		{Name: "expires_in", Kind: kAny, Check: checkExpiresIn},
	}
	refreshTokenSchema = Schema{
		{Name: "refresh_token", Kind: kString, NonEmpty: true, MaxLen: 8192},
	}
)

// checkUsername refuses what Basic credentials cannot carry (':' ends the
// name) and invisible characters that would make two names look alike.
func checkUsername(label string, v any) []string {
	s, _ := v.(string)
	if strings.ContainsRune(s, ':') {
		return []string{label + " must not contain ':'"}
	}
	for _, r := range s {
		if unicode.IsControl(r) || unicode.IsSpace(r) || unicode.In(r, unicode.Cf, unicode.Zl, unicode.Zp) || r == unicode.ReplacementChar {
			return []string{label + " must not contain spaces or control characters"}
		}
	}
	return nil
}

func checkRoleName(label string, v any) []string {
	s, _ := v.(string)
	for _, r := range s {
		if unicode.IsControl(r) || unicode.In(r, unicode.Cf, unicode.Zl, unicode.Zp) || r == unicode.ReplacementChar {
			return []string{label + " must not contain control characters"}
		}
	}
	return nil
}

// expiresRE is HarperDB's expires_in as a string (jsonwebtoken's): an
// amount and a unit, milliseconds when the unit is left out.
var expiresRE = regexp.MustCompile(`(?i)^\s*(\d+(?:\.\d+)?)\s*(ms|msecs?|milliseconds?|s|secs?|seconds?|m|mins?|minutes?|h|hrs?|hours?|d|days?|w|weeks?|y|yrs?|years?)?\s*$`)

// parseExpiresIn reads expires_in: a number of seconds, or a string like
// "1d", "2 hours", "30m". It reports false for anything else, or for a
// lifetime that is not positive.
func parseExpiresIn(v any) (time.Duration, bool) {
	if n, ok := v.(json.Number); ok {
		f, err := n.Float64()
		if err != nil || f <= 0 || f > float64(100*365*24*3600) {
			return 0, false
		}
		return time.Duration(f * float64(time.Second)), true
	}
	s, ok := v.(string)
	if !ok {
		return 0, false
	}
	m := expiresRE.FindStringSubmatch(s)
	if m == nil {
		return 0, false
	}
	f, err := strconv.ParseFloat(m[1], 64)
	if err != nil || f <= 0 || f > 1e12 {
		return 0, false
	}
	unit := time.Millisecond
	switch u := strings.ToLower(m[2]); {
	case u == "" || strings.HasPrefix(u, "ms") || strings.HasPrefix(u, "milli"):
	case strings.HasPrefix(u, "s"):
		unit = time.Second
	case strings.HasPrefix(u, "m"):
		unit = time.Minute
	case strings.HasPrefix(u, "h"):
		unit = time.Hour
	case strings.HasPrefix(u, "d"):
		unit = 24 * time.Hour
	case strings.HasPrefix(u, "w"):
		unit = 7 * 24 * time.Hour
	default:
		unit = 365 * 24 * time.Hour
	}
	if f > float64(100*365*24*time.Hour)/float64(unit) {
		return 0, false
	}
	return time.Duration(f * float64(unit)), true
}

func checkExpiresIn(label string, v any) []string {
	if _, ok := parseExpiresIn(v); !ok {
		return []string{label + ` must be a positive number of seconds or a time like "1d", "2h" or "30m"`}
	}
	return nil
}

func userSchemas() map[string]Schema {
	return map[string]Schema{
		"add_user": addUserSchema, "alter_user": alterUserSchema, "drop_user": dropUserSchema,
		"list_users": nil, "user_info": nil,
		"add_role": addRoleSchema, "alter_role": alterRoleSchema, "drop_role": dropRoleSchema, "list_roles": nil,
		"create_authentication_tokens": createTokensSchema, "refresh_operation_token": refreshTokenSchema,
	}
}

// Operations are the user, role and token operations (HarperDB's names and
// handler names).
func (u *UserOps) Operations() []events.Operation {
	return []events.Operation{
		{Name: "add_user", Handler: "addUser", Mutating: true, Run: typed(nil, schemaOf(addUserSchema), u.AddUser)},
		{Name: "alter_user", Handler: "alterUser", Mutating: true, Run: typed(nil, schemaOf(alterUserSchema), u.AlterUser)},
		{Name: "drop_user", Handler: "dropUser", Mutating: true, Run: typed(nil, schemaOf(dropUserSchema), u.DropUser)},
		{Name: "list_users", Handler: "listUsersExternal", Run: typed(nil, noSchema, u.ListUsers)},
		{Name: "user_info", Handler: "userInfo", Access: events.AnyUser, Run: typed(nil, noSchema, u.UserInfo)},
		{Name: "add_role", Handler: "addRole", Mutating: true, Run: typed(nil, schemaOf(addRoleSchema), u.AddRole)},
		{Name: "alter_role", Handler: "alterRole", Mutating: true, Run: typed(nil, schemaOf(alterRoleSchema), u.AlterRole)},
		{Name: "drop_role", Handler: "dropRole", Mutating: true, Run: typed(nil, schemaOf(dropRoleSchema), u.DropRole)},
		{Name: "list_roles", Handler: "listRoles", Run: typed(nil, noSchema, u.ListRoles)},
		{Name: "create_authentication_tokens", Handler: "createTokens", Access: events.Public, Run: typed(nil, schemaOf(createTokensSchema), u.CreateTokens)},
		{Name: "refresh_operation_token", Handler: "refreshOperationToken", Access: events.Public, Run: typed(nil, schemaOf(refreshTokenSchema), u.RefreshToken)},
	}
}

// UserRecord is a user as list_users and user_info show it: never a
// password or hash.
type UserRecord struct {
	Username    string     `json:"username"`
	Active      bool       `json:"active"`
	Role        RoleRecord `json:"role"`
	CreatedTime int64      `json:"__createdtime__"`
	UpdatedTime int64      `json:"__updatedtime__"`
}

// RoleRecord is a role as the role operations show it.
type RoleRecord struct {
	Role        string          `json:"role"`
	ID          string          `json:"id"`
	Permission  json.RawMessage `json:"permission"`
	CreatedTime int64           `json:"__createdtime__"`
	UpdatedTime int64           `json:"__updatedtime__"`
}

// MessageReply is a reply that only carries a message.
type MessageReply struct {
	Message string `json:"message"`
}

// AlterUserReply is alter_user's reply (HarperDB's update result).
type AlterUserReply struct {
	Message       string   `json:"message"`
	NewAttributes []string `json:"new_attributes"`
	TxnTime       int64    `json:"txn_time"`
	UpdateHashes  []string `json:"update_hashes"`
	SkippedHashes []string `json:"skipped_hashes"`
}

// TokensReply is create_authentication_tokens' reply.
type TokensReply struct {
	OperationToken string `json:"operation_token"`
	RefreshToken   string `json:"refresh_token"`
}

// RefreshReply is refresh_operation_token's reply.
type RefreshReply struct {
	OperationToken string `json:"operation_token"`
}

type addUserRequest struct {
	Username string `json:"username"`
	Password string `json:"password"`
	Role     string `json:"role"`
	Active   bool   `json:"active"`
}

type alterUserRequest struct {
	Username string  `json:"username"`
	Password *string `json:"password"`
	Role     *string `json:"role"`
	Active   *bool   `json:"active"`
}

type roleRequest struct {
	ID         string          `json:"id"`
	Role       string          `json:"role"`
	Permission json.RawMessage `json:"permission"`
}

func nowMillis() int64 { return time.Now().UnixMilli() }

func randomID(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// newUUID is a random (version 4) UUID, the form HarperDB's role ids take.
func newUUID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b)
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

// permissionFlag reads a boolean flag of a role's permission object.
func permissionFlag(p json.RawMessage, flag string) bool {
	var m map[string]json.RawMessage
	if json.Unmarshal(p, &m) != nil {
		return false
	}
	var b bool
	return json.Unmarshal(m[flag], &b) == nil && b
}

func isBuiltIn(role string) bool { return role == auth.SuperUser || role == auth.ClusterUser }

// findRole matches a role by name, then by id (HarperDB 3 clients send the
// id in add_user's role).
func findRole(roles []storage.Role, ref string) (storage.Role, bool) {
	for _, r := range roles {
		if r.Role == ref {
			return r, true
		}
	}
	for _, r := range roles {
		if r.ID == ref {
			return r, true
		}
	}
	return storage.Role{}, false
}

// User implements auth.Directory.
func (u *UserOps) User(name string) (auth.User, bool, error) {
	su, ok, err := u.Store.User(name)
	if err != nil || !ok {
		return auth.User{}, false, err
	}
	super, err := u.RoleGrantsSuper(su.Role)
	if err != nil {
		return auth.User{}, false, err
	}
	return auth.User{Name: su.Username, Role: su.Role, Super: super, Active: su.Active, Hash: su.Hash, ID: su.ID}, true, nil
}

// RoleGrantsSuper implements auth.Directory.
func (u *UserOps) RoleGrantsSuper(role string) (bool, error) {
	r, ok, err := u.Store.RoleNamed(role)
	if err != nil || !ok {
		return false, err
	}
	return permissionFlag(r.Permission, "super_user"), nil
}

// Bootstrap makes sure the built-in roles exist, and on the first start of a
// store creates the admin super_user: with password when given, else with a
// generated one that it returns (the caller prints it once).
func (u *UserOps) Bootstrap(adminUser, password string) (created bool, generated string, err error) {
	// The slow hash only when the admin may still have to be created.
	hash := ""
	if done, err := u.Store.Meta(metaAdminCreated); err != nil {
		return false, "", err
	} else if done == "" {
		if password == "" {
			b := make([]byte, 18)
			_, _ = rand.Read(b)
			generated = base64.RawURLEncoding.EncodeToString(b)
			password = generated
		}
		if hash, err = auth.HashPassword(password); err != nil {
			return false, "", err
		}
	}
	err = u.Store.Update(func(tx *storage.Tx) error {
		created = false
		roles, err := tx.Roles()
		if err != nil {
			return err
		}
		now := nowMillis()
		for _, b := range []struct{ name, perm string }{
			{auth.SuperUser, `{"super_user":true}`},
			{auth.ClusterUser, `{"cluster_user":true}`},
		} {
			if _, ok := findRole(roles, b.name); !ok {
				if err := tx.PutRole(storage.Role{ID: newUUID(), Role: b.name, Permission: json.RawMessage(b.perm), Created: now, Updated: now}); err != nil {
					return err
				}
			}
		}
		if done, err := tx.Meta(metaAdminCreated); err != nil || done != "" || hash == "" {
			return err
		}
		users, err := tx.Users()
		if err != nil {
			return err
		}
		if len(users) == 0 {
			if err := tx.PutUser(storage.User{Username: adminUser, Role: auth.SuperUser, Active: true, Hash: hash,
				ID: randomID(16), Created: now, Updated: now}); err != nil {
				return err
			}
			created = true
		}
		return tx.SetMeta(metaAdminCreated, "1")
	})
	if err != nil {
		return false, "", fmt.Errorf("create built-in roles and the admin user: %w", err)
	}
	u.Auth.Invalidate()
	if !created {
		generated = ""
	}
	return created, generated, nil
}

// lastSuperUser refuses a change that leaves no active super_user: nobody
// could manage users or run clustering operations any more.
func lastSuperUser(tx *storage.Tx, roles []storage.Role, change func(storage.User) (storage.User, bool)) error {
	users, err := tx.Users()
	if err != nil {
		return err
	}
	super := func(x storage.User) bool {
		r, ok := findRole(roles, x.Role)
		return x.Active && ok && permissionFlag(r.Permission, "super_user")
	}
	before, after := 0, 0
	var lost string
	for _, x := range users {
		y, keep := change(x)
		if super(x) {
			before++
			if !keep || !super(y) {
				lost = x.Username
			}
		}
		if keep && super(y) {
			after++
		}
	}
	if before > 0 && after == 0 {
		return events.Errorf(409, "'%s' is the last active super_user: add another super_user first, or nobody can manage users or run clustering operations", lost)
	}
	return nil
}

// AddUser is add_user.
func (u *UserOps) AddUser(ctx context.Context, _ events.Caller, req addUserRequest) (MessageReply, error) {
	hash, err := auth.HashPassword(req.Password)
	if err != nil {
		return MessageReply{}, err
	}
	err = u.Store.Update(func(tx *storage.Tx) error {
		if _, exists, err := tx.User(req.Username); err != nil {
			return err
		} else if exists {
			return events.Errorf(409, "User %s already exists", req.Username)
		}
		roles, err := tx.Roles()
		if err != nil {
			return err
		}
		r, ok := findRole(roles, req.Role)
		if !ok {
			return events.Errorf(404, "Role '%s' was not found", req.Role)
		}
		now := nowMillis()
		return tx.PutUser(storage.User{Username: req.Username, Role: r.Role, Active: req.Active, Hash: hash,
			ID: randomID(16), Created: now, Updated: now})
	})
	if err != nil {
		return MessageReply{}, err
	}
	u.Auth.Invalidate()
	return MessageReply{Message: req.Username + " successfully added"}, nil
}

// AlterUser is alter_user.
func (u *UserOps) AlterUser(ctx context.Context, _ events.Caller, req alterUserRequest) (AlterUserReply, error) {
	if req.Password == nil && req.Role == nil && req.Active == nil {
		return AlterUserReply{}, events.Errorf(400, "nothing to update, must supply active, role or password to update")
	}
	hash := ""
	if req.Password != nil {
		h, err := auth.HashPassword(*req.Password)
		if err != nil {
			return AlterUserReply{}, err
		}
		hash = h
	}
	err := u.Store.Update(func(tx *storage.Tx) error {
		cur, exists, err := tx.User(req.Username)
		if err != nil {
			return err
		}
		if !exists {
			return events.Errorf(404, "User %s does not exist", req.Username)
		}
		roles, err := tx.Roles()
		if err != nil {
			return err
		}
		next := cur
		if req.Role != nil {
			r, ok := findRole(roles, *req.Role)
			if !ok {
				return events.Errorf(404, "Role '%s' was not found", *req.Role)
			}
			next.Role = r.Role
		}
		if req.Active != nil {
			next.Active = *req.Active
		}
		if hash != "" {
			next.Hash = hash
		}
		next.Updated = nowMillis()
		if err := lastSuperUser(tx, roles, func(x storage.User) (storage.User, bool) {
			if x.Username == next.Username {
				return next, true
			}
			return x, true
		}); err != nil {
			return err
		}
		return tx.PutUser(next)
	})
	if err != nil {
		return AlterUserReply{}, err
	}
	u.Auth.Invalidate()
	return AlterUserReply{Message: "updated 1 of 1 records", NewAttributes: []string{}, TxnTime: nowMillis(),
		UpdateHashes: []string{req.Username}, SkippedHashes: []string{}}, nil
}

// dropUserRequest is drop_user's request.
type dropUserRequest struct {
	Username string `json:"username"`
}

// DropUser is drop_user.
func (u *UserOps) DropUser(ctx context.Context, _ events.Caller, req dropUserRequest) (MessageReply, error) {
	err := u.Store.Update(func(tx *storage.Tx) error {
		if _, exists, err := tx.User(req.Username); err != nil {
			return err
		} else if !exists {
			return events.Errorf(404, "User %s does not exist", req.Username)
		}
		roles, err := tx.Roles()
		if err != nil {
			return err
		}
		if err := lastSuperUser(tx, roles, func(x storage.User) (storage.User, bool) {
			return x, x.Username != req.Username
		}); err != nil {
			return err
		}
		return tx.DeleteUser(req.Username)
	})
	if err != nil {
		return MessageReply{}, err
	}
	u.Auth.Invalidate()
	return MessageReply{Message: req.Username + " successfully deleted"}, nil
}

func roleRecord(r storage.Role) RoleRecord {
	return RoleRecord{Role: r.Role, ID: r.ID, Permission: r.Permission, CreatedTime: r.Created, UpdatedTime: r.Updated}
}

func userRecord(x storage.User, roles []storage.Role) UserRecord {
	rec := UserRecord{Username: x.Username, Active: x.Active, CreatedTime: x.Created, UpdatedTime: x.Updated}
	if r, ok := findRole(roles, x.Role); ok {
		rec.Role = roleRecord(r)
	} else {
		rec.Role = RoleRecord{Role: x.Role, Permission: json.RawMessage(`{}`)}
	}
	return rec
}

// ListUsers is list_users.
func (u *UserOps) ListUsers(ctx context.Context, _ events.Caller, _ NoRequest) ([]UserRecord, error) {
	users, err := u.Store.Users()
	if err != nil {
		return nil, err
	}
	roles, err := u.Store.Roles()
	if err != nil {
		return nil, err
	}
	out := make([]UserRecord, 0, len(users))
	for _, x := range users {
		out = append(out, userRecord(x, roles))
	}
	return out, nil
}

// UserInfo is user_info: the caller's own record. A caller from a token
// minted with a role claim (no stored user) is shown with that role.
func (u *UserOps) UserInfo(ctx context.Context, c events.Caller, _ NoRequest) (UserRecord, error) {
	roles, err := u.Store.Roles()
	if err != nil {
		return UserRecord{}, err
	}
	x, ok, err := u.Store.User(c.User)
	if err != nil {
		return UserRecord{}, err
	}
	if ok && x.Role == c.Role {
		return userRecord(x, roles), nil
	}
	rec := UserRecord{Username: c.User, Active: true}
	if r, ok := findRole(roles, c.Role); ok {
		rec.Role = roleRecord(r)
	} else {
		perm, _ := json.Marshal(map[string]bool{"super_user": c.Super})
		rec.Role = RoleRecord{Role: c.Role, Permission: perm}
	}
	return rec, nil
}

// AddRole is add_role.
func (u *UserOps) AddRole(ctx context.Context, _ events.Caller, req roleRequest) (RoleRecord, error) {
	var out storage.Role
	err := u.Store.Update(func(tx *storage.Tx) error {
		roles, err := tx.Roles()
		if err != nil {
			return err
		}
		for _, r := range roles {
			if r.Role == req.Role {
				return events.Errorf(409, "Role '%s' already exists", req.Role)
			}
		}
		now := nowMillis()
		out = storage.Role{ID: newUUID(), Role: req.Role, Permission: req.Permission, Created: now, Updated: now}
		return tx.PutRole(out)
	})
	if err != nil {
		return RoleRecord{}, err
	}
	u.Auth.Invalidate()
	return roleRecord(out), nil
}

// AlterRole is alter_role.
func (u *UserOps) AlterRole(ctx context.Context, _ events.Caller, req roleRequest) (RoleRecord, error) {
	var out storage.Role
	err := u.Store.Update(func(tx *storage.Tx) error {
		cur, ok, err := tx.Role(req.ID)
		if err != nil {
			return err
		}
		if !ok {
			return events.Errorf(404, "Role with id '%s' was not found", req.ID)
		}
		roles, err := tx.Roles()
		if err != nil {
			return err
		}
		next := cur
		if req.Role != "" && req.Role != cur.Role {
			for _, r := range roles {
				if r.Role == req.Role {
					return events.Errorf(409, "Role '%s' already exists", req.Role)
				}
			}
			next.Role = req.Role
		}
		next.Permission = req.Permission
		next.Updated = nowMillis()
		if isBuiltIn(cur.Role) && (next.Role != cur.Role ||
			permissionFlag(next.Permission, "super_user") != permissionFlag(cur.Permission, "super_user") ||
			permissionFlag(next.Permission, "cluster_user") != permissionFlag(cur.Permission, "cluster_user")) {
			return events.Errorf(400, "Role '%s' is built in: its name and its super_user and cluster_user permissions cannot be changed", cur.Role)
		}
		// Users refer to roles by name: a renamed role takes its users along.
		if next.Role != cur.Role {
			users, err := tx.Users()
			if err != nil {
				return err
			}
			for _, x := range users {
				if x.Role == cur.Role {
					x.Role = next.Role
					if err := tx.PutUser(x); err != nil {
						return err
					}
				}
			}
		}
		after := make([]storage.Role, 0, len(roles))
		for _, r := range roles {
			if r.ID == next.ID {
				r = next
			}
			after = append(after, r)
		}
		if err := lastSuperUser(tx, after, func(x storage.User) (storage.User, bool) {
			if x.Role == cur.Role {
				x.Role = next.Role
			}
			return x, true
		}); err != nil {
			return err
		}
		out = next
		return tx.PutRole(next)
	})
	if err != nil {
		return RoleRecord{}, err
	}
	u.Auth.Invalidate()
	return roleRecord(out), nil
}

// dropRoleRequest is drop_role's request.
type dropRoleRequest struct {
	ID string `json:"id"`
}

// DropRole is drop_role.
func (u *UserOps) DropRole(ctx context.Context, _ events.Caller, req dropRoleRequest) (MessageReply, error) {
	var name string
	err := u.Store.Update(func(tx *storage.Tx) error {
		r, ok, err := tx.Role(req.ID)
		if err != nil {
			return err
		}
		if !ok {
			return events.Errorf(404, "Role with id '%s' was not found", req.ID)
		}
		name = r.Role
		if isBuiltIn(r.Role) {
			return events.Errorf(400, "Role '%s' is built in and cannot be dropped", r.Role)
		}
		users, err := tx.Users()
		if err != nil {
			return err
		}
		for _, x := range users {
			if x.Role == r.Role {
				return events.Errorf(409, "Cannot drop role %s as it has user(s) tied to this role", r.Role)
			}
		}
		return tx.DeleteRole(req.ID)
	})
	if err != nil {
		return MessageReply{}, err
	}
	u.Auth.Invalidate()
	return MessageReply{Message: name + " successfully deleted"}, nil
}

// ListRoles is list_roles.
func (u *UserOps) ListRoles(ctx context.Context, _ events.Caller, _ NoRequest) ([]RoleRecord, error) {
	roles, err := u.Store.Roles()
	if err != nil {
		return nil, err
	}
	sort.Slice(roles, func(i, j int) bool {
		return roles[i].Created < roles[j].Created || roles[i].Created == roles[j].Created && roles[i].Role < roles[j].Role
	})
	out := make([]RoleRecord, 0, len(roles))
	for _, r := range roles {
		out = append(out, roleRecord(r))
	}
	return out, nil
}

// createTokensRequest is create_authentication_tokens' request.
type createTokensRequest struct {
	Username  *string `json:"username"`
	Password  *string `json:"password"`
	ExpiresIn any     `json:"expires_in"`
}

// CreateTokens is create_authentication_tokens: the operation and refresh
// token of the user named in the body (its password checked), or, without
// username and password, of the caller the Authorization header (else a
// verified client certificate) names.
func (u *UserOps) CreateTokens(ctx context.Context, _ events.Caller, req createTokensRequest) (TokensReply, error) {
	ttl := u.OperationTTL
	if req.ExpiresIn != nil {
		v := req.ExpiresIn
		if f, ok := v.(float64); ok { // decoded again after validation
			v = json.Number(strconv.FormatFloat(f, 'f', -1, 64))
		}
		d, _ := parseExpiresIn(v)
		if max := u.Auth.Verifier().Limits().MaxTTL; d > max {
			return TokensReply{}, events.Errorf(400, "'expires_in' must be at most %s (auth.maxTokenTTL)", max)
		}
		if d < time.Second {
			return TokensReply{}, events.Errorf(400, "'expires_in' must be at least 1s (a number is seconds; a string without a unit is milliseconds)")
		}
		ttl = d
	}
	var tok auth.Token
	switch {
	case req.Username == nil && req.Password == nil:
		c, err := events.CallerOf(ctx, u.Auth) // the header, else a client certificate's user
		if err != nil {
			return TokensReply{}, err
		}
		tok = auth.Token{User: c.User, Role: c.Role}
		if su, ok, err := u.Auth.User(c.User); err != nil {
			return TokensReply{}, err
		} else if ok && su.Role == c.Role {
			tok.UserID = su.ID
		}
	case req.Username == nil:
		return TokensReply{}, events.Errorf(400, "'username' is required")
	case req.Password == nil:
		return TokensReply{}, events.Errorf(400, "'password' is required")
	default:
		_, su, err := u.Auth.Login(*req.Username, *req.Password)
		if err != nil {
			return TokensReply{}, err
		}
		tok = auth.Token{User: su.Name, Role: su.Role, UserID: su.ID}
	}
	tok.TTL, tok.Kind = ttl, auth.KindOperation
	op, err := auth.MintToken(u.IssuerKey, tok)
	if err != nil {
		return TokensReply{}, err
	}
	tok.TTL, tok.Kind = u.RefreshTTL, auth.KindRefresh
	refresh, err := auth.MintToken(u.IssuerKey, tok)
	if err != nil {
		return TokensReply{}, err
	}
	return TokensReply{OperationToken: op, RefreshToken: refresh}, nil
}

// refreshTokenRequest is refresh_operation_token's request.
type refreshTokenRequest struct {
	RefreshToken string `json:"refresh_token"`
}

// RefreshToken is refresh_operation_token: a new operation token for the
// refresh token in the body (or, as HarperDB's clients send it, in the
// Authorization header as Bearer).
func (u *UserOps) RefreshToken(ctx context.Context, _ events.Caller, req refreshTokenRequest) (RefreshReply, error) {
	tok := req.RefreshToken
	if tok == "" {
		scheme, rest, _ := strings.Cut(strings.TrimSpace(events.AuthorizationOf(ctx)), " ")
		if !strings.EqualFold(scheme, "Bearer") {
			return RefreshReply{}, events.Errorf(400, "'refresh_token' is required")
		}
		tok = strings.TrimSpace(rest)
	}
	c, vt, err := u.Auth.Token(tok, auth.KindRefresh)
	if err != nil {
		return RefreshReply{}, err
	}
	op, err := auth.MintToken(u.IssuerKey, auth.Token{User: c.User, Role: c.Role, UserID: vt.UserID, TTL: u.OperationTTL})
	if err != nil {
		return RefreshReply{}, err
	}
	return RefreshReply{OperationToken: op}, nil
}
