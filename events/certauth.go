package events

import (
	"context"
	"errors"

	"github.com/clusterd/clusterd/auth"
)

// UserLookup finds an active stored user by name, without a password: the
// Authenticator's side for transports that authenticated the user another
// way (a verified TLS client certificate). *auth.Authenticator is one.
type UserLookup interface {
	LookupUser(name string) (auth.Caller, error)
}

// authenticate: the Authorization header when there is one (it wins over a
// client certificate, so a certificate holder can still act as another user
// with that user's credentials); else the user a verified client
// certificate names, who must be an active stored user and gets that
// user's role; else the header's refusal ("Must login").
func (d *Dispatcher) authenticate(req Request) (auth.Caller, error) { return authenticate(d.auth, req) }

type clientCertUserKey struct{}

// CallerOf authenticates the request a public operation
// (create_authentication_tokens) serves, as the dispatcher authenticates
// every other one: its Authorization header, else its verified client
// certificate's user.
func CallerOf(ctx context.Context, a Authenticator) (auth.Caller, error) {
	user, _ := ctx.Value(clientCertUserKey{}).(string)
	return authenticate(a, Request{Authorization: AuthorizationOf(ctx), ClientCertUser: user})
}

func authenticate(a Authenticator, req Request) (auth.Caller, error) {
	if req.Authorization != "" || req.ClientCertUser == "" {
		return a.Authenticate(req.Authorization)
	}
	users, ok := a.(UserLookup)
	if !ok {
		return auth.Caller{}, &auth.Refusal{Status: 401, Message: "Unauthorized: this node cannot look up the user of a client certificate; send an Authorization header"}
	}
	c, err := users.LookupUser(req.ClientCertUser)
	var r *auth.Refusal
	if errors.As(err, &r) {
		return auth.Caller{}, &auth.Refusal{Status: r.Status, Message: r.Message + ": the client certificate's user '" + req.ClientCertUser + "' is not an active user"}
	}
	return c, err
}
