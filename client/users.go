package client

import (
	"context"
	"encoding/base64"
)

// WithBasicAuth sends HarperDB's Basic credentials (a user of the node) with
// every request instead of a token. The node checks the password once and
// caches the result, so this costs about what a token does.
func WithBasicAuth(user, password string) Option {
	h := "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+password))
	return func(c *Client) { c.token, c.authorization = nil, h }
}

// Role is a role as the role operations show it.
type Role struct {
	Role string `json:"role"`
	ID   string `json:"id"`
	// Permission is HarperDB's permission object: super_user, cluster_user,
	// structure_user and table permissions.
	Permission  map[string]any `json:"permission"`
	CreatedTime int64          `json:"__createdtime__"`
	UpdatedTime int64          `json:"__updatedtime__"`
}

// User is a user as list_users and user_info show it (never a password).
type User struct {
	Username    string `json:"username"`
	Active      bool   `json:"active"`
	Role        Role   `json:"role"`
	CreatedTime int64  `json:"__createdtime__"`
	UpdatedTime int64  `json:"__updatedtime__"`
}

// AddUserRequest is add_user's body.
type AddUserRequest struct {
	Username string `json:"username"`
	Password string `json:"password"`
	Role     string `json:"role"`
	Active   bool   `json:"active"`
}

// AlterUserRequest is alter_user's body; nil fields are left as they are.
type AlterUserRequest struct {
	Username string  `json:"username"`
	Password *string `json:"password,omitempty"`
	Role     *string `json:"role,omitempty"`
	Active   *bool   `json:"active,omitempty"`
}

// AlterUserReply is alter_user's reply (HarperDB's update result).
type AlterUserReply struct {
	Message       string   `json:"message"`
	NewAttributes []string `json:"new_attributes"`
	TxnTime       int64    `json:"txn_time"`
	UpdateHashes  []string `json:"update_hashes"`
	SkippedHashes []string `json:"skipped_hashes"`
}

// AddRoleRequest is add_role's body.
type AddRoleRequest struct {
	Role       string         `json:"role"`
	Permission map[string]any `json:"permission"`
}

// AlterRoleRequest is alter_role's body (Role "" keeps the name).
type AlterRoleRequest struct {
	ID         string         `json:"id"`
	Role       string         `json:"role,omitempty"`
	Permission map[string]any `json:"permission"`
}

// Tokens are create_authentication_tokens' reply.
type Tokens struct {
	OperationToken string `json:"operation_token"`
	RefreshToken   string `json:"refresh_token"`
}

// AddUser creates a user of the node (add_user).
func (c *Client) AddUser(ctx context.Context, req AddUserRequest) (MessageReply, error) {
	return call[MessageReply](ctx, c, "add_user", req)
}

// AlterUser changes a user's password, role or active flag (alter_user).
func (c *Client) AlterUser(ctx context.Context, req AlterUserRequest) (AlterUserReply, error) {
	return call[AlterUserReply](ctx, c, "alter_user", req)
}

// DropUser deletes a user (drop_user); its tokens stop working.
func (c *Client) DropUser(ctx context.Context, username string) (MessageReply, error) {
	return call[MessageReply](ctx, c, "drop_user", map[string]string{"username": username})
}

// ListUsers lists the node's users (list_users).
func (c *Client) ListUsers(ctx context.Context) ([]User, error) {
	return call[[]User](ctx, c, "list_users", nil)
}

// UserInfo returns the caller's own user (user_info; any role).
func (c *Client) UserInfo(ctx context.Context) (User, error) {
	return call[User](ctx, c, "user_info", nil)
}

// AddRole creates a role (add_role).
func (c *Client) AddRole(ctx context.Context, req AddRoleRequest) (Role, error) {
	return call[Role](ctx, c, "add_role", req)
}

// AlterRole replaces a role's permission, and renames it when req.Role is
// set (alter_role).
func (c *Client) AlterRole(ctx context.Context, req AlterRoleRequest) (Role, error) {
	return call[Role](ctx, c, "alter_role", req)
}

// DropRole deletes a role no user has (drop_role).
func (c *Client) DropRole(ctx context.Context, id string) (MessageReply, error) {
	return call[MessageReply](ctx, c, "drop_role", map[string]string{"id": id})
}

// ListRoles lists the node's roles (list_roles).
func (c *Client) ListRoles(ctx context.Context) ([]Role, error) {
	return call[[]Role](ctx, c, "list_roles", nil)
}

// CreateAuthenticationTokens checks a user's password and returns an
// operation token (use it with WithToken) and a refresh token
// (create_authentication_tokens; no credentials needed).
func (c *Client) CreateAuthenticationTokens(ctx context.Context, username, password string) (Tokens, error) {
	return call[Tokens](ctx, c, "create_authentication_tokens", map[string]string{"username": username, "password": password})
}

// RefreshOperationToken returns a new operation token for a refresh token
// (refresh_operation_token).
func (c *Client) RefreshOperationToken(ctx context.Context, refreshToken string) (string, error) {
	var out struct {
		OperationToken string `json:"operation_token"`
	}
	err := c.Call(ctx, "refresh_operation_token", map[string]string{"refresh_token": refreshToken}, &out)
	return out.OperationToken, err
}
