package node

import (
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/clusterd/clusterd/auth"
	"github.com/clusterd/clusterd/handlers"
	"github.com/clusterd/clusterd/topology"
	"go.uber.org/zap"
)

// HarperDB's default token lifetimes (operationTokenTimeout 1d,
// refreshTokenTimeout 30d).
const (
	defaultOperationTokenTTL = 24 * time.Hour
	defaultRefreshTokenTTL   = 30 * 24 * time.Hour
	defaultAdminUser         = "admin"
)

// Limits are the token lifetime bounds in force.
func (a Auth) Limits() auth.Limits {
	l := auth.Limits{MaxTTL: a.MaxTokenTTL, MaxRefreshTTL: a.MaxRefreshTokenTTL}
	if l.MaxTTL <= 0 {
		l.MaxTTL = auth.DefaultMaxTokenTTL
	}
	if l.MaxRefreshTTL <= 0 {
		l.MaxRefreshTTL = auth.DefaultMaxRefreshTokenTTL
	}
	return l
}

// TokenTTLs are the lifetimes of the tokens create_authentication_tokens
// hands out: the configured ones, else HarperDB's defaults cut to the bounds.
func (a Auth) TokenTTLs() (operation, refresh time.Duration) {
	l := a.Limits()
	operation, refresh = a.OperationTokenTTL, a.RefreshTokenTTL
	if operation <= 0 {
		operation = min(defaultOperationTokenTTL, l.MaxTTL)
	}
	if refresh <= 0 {
		refresh = min(defaultRefreshTokenTTL, l.MaxRefreshTTL)
	}
	return operation, refresh
}

func (a Auth) problems() []string {
	var p []string
	for _, d := range []struct {
		key string
		v   time.Duration
	}{
		{"auth.maxTokenTTL", a.MaxTokenTTL}, {"auth.maxRefreshTokenTTL", a.MaxRefreshTokenTTL},
		{"auth.operationTokenTTL", a.OperationTokenTTL}, {"auth.refreshTokenTTL", a.RefreshTokenTTL},
	} {
		if d.v < 0 || d.v > 0 && d.v < time.Second {
			p = append(p, fmt.Sprintf("%s must be 0 (the default) or at least 1s, got %v", d.key, d.v))
		}
	}
	l := a.Limits()
	if a.OperationTokenTTL > l.MaxTTL {
		p = append(p, fmt.Sprintf("auth.operationTokenTTL (%v) must not be longer than auth.maxTokenTTL (%v)", a.OperationTokenTTL, l.MaxTTL))
	}
	if a.RefreshTokenTTL > l.MaxRefreshTTL {
		p = append(p, fmt.Sprintf("auth.refreshTokenTTL (%v) must not be longer than auth.maxRefreshTokenTTL (%v)", a.RefreshTokenTTL, l.MaxRefreshTTL))
	}
	return p
}

// startAuth wires the authenticator to the users and roles in the store.
func (n *Node) startAuth(v *auth.Verifier) {
	opTTL, refreshTTL := n.Config.Auth.TokenTTLs()
	n.users = &handlers.UserOps{Store: n.Store, IssuerKey: n.issuerKey, OperationTTL: opTTL, RefreshTTL: refreshTTL}
	n.Auth = auth.NewAuthenticator(v, n.users)
	n.users.Auth = n.Auth
}

// adminCredentials are the first start's super_user: auth.adminUser and
// auth.adminPassword (AUTH_ADMINUSER, AUTH_ADMINPASSWORD), else HarperDB
// installer's HDB_ADMIN_USERNAME and HDB_ADMIN_PASSWORD, else "admin" with a
// generated password.
func (a Auth) adminCredentials() (user, password string) {
	user, password = a.AdminUser, a.AdminPassword
	if user == "" {
		user = os.Getenv("HDB_ADMIN_USERNAME")
	}
	if password == "" {
		password = os.Getenv("HDB_ADMIN_PASSWORD")
	}
	if user == "" {
		user = defaultAdminUser
	}
	return user, password
}

// createAdmin makes sure the built-in roles exist and, on a store's first
// start, creates the admin super_user. A generated password is printed once,
// after `node started`, with a command that uses it.
func (n *Node) createAdmin() error {
	user, password := n.Config.Auth.adminCredentials()
	created, generated, err := n.users.Bootstrap(user, password)
	if err != nil {
		return err
	}
	if !created {
		return nil
	}
	n.log.Info("created the admin user", zap.String("user", user), zap.Bool("generated_password", generated != ""))
	if generated != "" {
		n.first.hints = append(n.first.hints, func(w io.Writer, _ topology.Ports) {
			ca := ""
			if f := n.OperationsCAFile(); f != "" && strings.HasPrefix(n.OperationsURL(), "https:") {
				ca = "--cacert " + f + " "
			}
			fmt.Fprintf(w, "Created super_user '%s' with password %s (shown once; change it with alter_user). Try:\n"+
				"  curl %s-u '%s:%s' %s/ -H 'Content-Type: application/json' -d '{\"operation\":\"cluster_status\"}'\n",
				user, generated, ca, user, generated, n.OperationsURL())
		})
	}
	return nil
}

// effective fills in the defaults `config check` shows. The password stays
// as it is (Redacted hides it).
func (a Auth) effective() Auth {
	l := a.Limits()
	a.MaxTokenTTL, a.MaxRefreshTokenTTL = l.MaxTTL, l.MaxRefreshTTL
	a.OperationTokenTTL, a.RefreshTokenTTL = a.TokenTTLs()
	user, password := a.adminCredentials()
	a.AdminUser = user
	if password == "" {
		a.AdminPassword = "<generated and printed on the first start>"
	} else if a.AdminPassword == "" {
		a.AdminPassword = "<from HDB_ADMIN_PASSWORD>"
	}
	return a
}
