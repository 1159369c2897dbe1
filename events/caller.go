package events

import "github.com/clusterd/clusterd/auth"

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
