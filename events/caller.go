package events

import (
	"context"

	"github.com/clusterd/clusterd/auth"
)

// Caller is who sent a request (auth.Caller; kept here so operation
// signatures read events.Caller).
type Caller = auth.Caller

// SuperUser is the built-in role that may run clustering operations.
const SuperUser = auth.SuperUser

// Authenticator turns a request's Authorization header into a caller; its
// errors are *auth.Refusal (status and message of the reply).
type Authenticator interface {
	Authenticate(authorization string) (auth.Caller, error)
}

type authorizationKey struct{}

// AuthorizationOf is the request's Authorization header, for the public
// operations (create_authentication_tokens, refresh_operation_token) that
// check credentials themselves; "" for every other operation.
func AuthorizationOf(ctx context.Context) string {
	s, _ := ctx.Value(authorizationKey{}).(string)
	return s
}
