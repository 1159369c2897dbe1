package events

import (
	"encoding/json"
	"errors"
	"fmt"
)

// Error is an operation failure a user can act on: an HTTP-style status and a
// message. Extra fields are merged into the JSON body (403 needs them).
type Error struct {
	Status  int
	Message string
	Extra   map[string]any
	cause   error
}

func (e *Error) Error() string { return e.Message }
func (e *Error) Unwrap() error { return e.cause }

// Errorf returns an *Error with status.
func Errorf(status int, format string, args ...any) *Error {
	return &Error{Status: status, Message: fmt.Sprintf(format, args...)}
}

// Wrap returns an *Error with status and message that keeps cause for logs.
func Wrap(status int, cause error, message string) *Error {
	return &Error{Status: status, Message: message, cause: cause}
}

// AsError maps any error to an *Error; unknown errors become 500 carrying
// their text, which names what failed (never a stack).
func AsError(err error) *Error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	return &Error{Status: 500, Message: err.Error(), cause: err}
}

// Body renders the error's JSON reply body.
func (e *Error) Body() []byte {
	m := map[string]any{"error": e.Message}
	for k, v := range e.Extra {
		m[k] = v
	}
	b, _ := json.Marshal(m)
	return b
}
