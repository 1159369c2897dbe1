package client_test

import (
	"testing"

	"github.com/clusterd/clusterd/client"
	"github.com/clusterd/clusterd/node/nodetest"
)

// The user, role and token methods against a real node, with replies
// decoded strictly (every field the node sends is known to the types).
func TestUsersRolesAndTokens(t *testing.T) {
	n := nodetest.StartNamed(t, "u1")
	nc := nodetest.Connect(t, n)
	admin := client.New(nc, client.WithBasicAuth("admin", nodetest.AdminPassword))

	role, err := admin.AddRole(ctx, client.AddRoleRequest{Role: "ops", Permission: map[string]any{"super_user": true}})
	if err != nil || role.Role != "ops" || role.ID == "" || role.Permission["super_user"] != true || role.CreatedTime == 0 {
		t.Fatalf("AddRole: %+v %v", role, err)
	}
	if r, err := admin.AddUser(ctx, client.AddUserRequest{Username: "gus", Password: "pw", Role: "ops", Active: true}); err != nil || r.Message != "gus successfully added" {
		t.Fatalf("AddUser: %+v %v", r, err)
	}
	pw := "pw2"
	if r, err := admin.AlterUser(ctx, client.AlterUserRequest{Username: "gus", Password: &pw}); err != nil || r.Message != "updated 1 of 1 records" || r.UpdateHashes[0] != "gus" {
		t.Fatalf("AlterUser: %+v %v", r, err)
	}
	users, err := admin.ListUsers(ctx)
	if err != nil || len(users) != 2 || users[1].Username != "gus" || users[1].Role.Role != "ops" {
		t.Fatalf("ListUsers: %+v %v", users, err)
	}
	roles, err := admin.ListRoles(ctx)
	if err != nil || len(roles) != 3 {
		t.Fatalf("ListRoles: %+v %v", roles, err)
	}
	gus := client.New(nc, client.WithBasicAuth("gus", "pw2"))
	if me, err := gus.UserInfo(ctx); err != nil || me.Username != "gus" || me.Role.Permission["super_user"] != true {
		t.Fatalf("UserInfo: %+v %v", me, err)
	}
	if _, err := client.New(nc, client.WithBasicAuth("gus", "pw")).GetRoutes(ctx); client.StatusOf(err) != 401 {
		t.Fatalf("old password: %v", err)
	}

	toks, err := client.New(nc).CreateAuthenticationTokens(ctx, "gus", "pw2")
	if err != nil || toks.OperationToken == "" || toks.RefreshToken == "" {
		t.Fatalf("CreateAuthenticationTokens: %+v %v", toks, err)
	}
	if _, err := client.New(nc, client.WithToken(toks.OperationToken)).GetRoutes(ctx); err != nil {
		t.Fatalf("operation token: %v", err)
	}
	op, err := client.New(nc).RefreshOperationToken(ctx, toks.RefreshToken)
	if err != nil || op == "" {
		t.Fatalf("RefreshOperationToken: %q %v", op, err)
	}
	if role, err = admin.AlterRole(ctx, client.AlterRoleRequest{ID: role.ID, Permission: map[string]any{"super_user": false}}); err != nil || role.Permission["super_user"] != false {
		t.Fatalf("AlterRole: %+v %v", role, err)
	}
	if _, err := client.New(nc, client.WithToken(op)).GetRoutes(ctx); client.StatusOf(err) != 403 {
		t.Fatalf("token after the role lost super_user: %v", err)
	}
	if r, err := admin.DropUser(ctx, "gus"); err != nil || r.Message != "gus successfully deleted" {
		t.Fatalf("DropUser: %+v %v", r, err)
	}
	statusOf(t, func() error { _, err := client.New(nc, client.WithToken(op)).GetRoutes(ctx); return err }(), 401, "Unauthorized: the token's user 'gus' no longer exists")
	if r, err := admin.DropRole(ctx, role.ID); err != nil || r.Message != "ops successfully deleted" {
		t.Fatalf("DropRole: %+v %v", r, err)
	}
}
