package events

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"

	"github.com/clusterd/clusterd/auth"
)

// Error is an operation failure a user can act on: an HTTP-style status and a
// message. Extra fields are merged into the JSON body (403 needs them).
type Error struct {
	Status  int
	Message string
	Extra   map[string]any
	// Order lists Extra's keys in the order they follow "error" in the body
	// (HarperDB's bodies have a fixed key order); unlisted keys follow, sorted.
	Order []string
	cause error
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
	var r *auth.Refusal
	if errors.As(err, &r) {
		return &Error{Status: r.Status, Message: r.Message, cause: err}
	}
	var u interface{ Unavailable() bool }
	if errors.As(err, &u) && u.Unavailable() {
		return &Error{Status: 503, Message: err.Error(), cause: err}
	}
	msg := err.Error()
	// An unknown error names what failed; keep it readable if a dependency
	// put data in it (Badger dumps whole keys in hex).
	if len(msg) > 300 {
		msg = msg[:300] + "…"
	}
	return &Error{Status: 500, Message: msg, cause: err}
}

// Body renders the error's JSON reply body.
func (e *Error) Body() []byte {
	keys := make([]string, 0, len(e.Extra))
	for _, k := range e.Order {
		if _, ok := e.Extra[k]; ok && k != "error" && !slices.Contains(keys, k) {
			keys = append(keys, k)
		}
	}
	rest := make([]string, 0, len(e.Extra))
	for k := range e.Extra {
		if k != "error" && !slices.Contains(keys, k) {
			rest = append(rest, k)
		}
	}
	slices.Sort(rest)
	var b bytes.Buffer
	b.WriteString(`{"error":`)
	writeValue(&b, e.Message)
	for _, k := range append(keys, rest...) {
		b.WriteByte(',')
		writeValue(&b, k)
		b.WriteByte(':')
		writeValue(&b, e.Extra[k])
	}
	b.WriteByte('}')
	return b.Bytes()
}

func writeValue(b *bytes.Buffer, v any) {
	out, err := MarshalJSON(v)
	if err != nil {
		out, _ = MarshalJSON(fmt.Sprint(v))
	}
	b.Write(out)
}

// MarshalJSON encodes v without escaping <, > and &: replies are read by
// people in terminals ("must not contain ., * or >"), never embedded in HTML.
func MarshalJSON(v any) ([]byte, error) {
	e := encoders.Get().(*encoder)
	defer e.release()
	if err := e.enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.Clone(bytes.TrimSuffix(e.buf.Bytes(), []byte("\n"))), nil
}

// encoder is a reusable json.Encoder with its buffer: every reply is
// encoded, and a fresh encoder and buffer cost each one several allocations.
type encoder struct {
	buf bytes.Buffer
	enc *json.Encoder
}

var encoders = sync.Pool{New: func() any {
	e := &encoder{}
	e.enc = json.NewEncoder(&e.buf)
	e.enc.SetEscapeHTML(false)
	return e
}}

func (e *encoder) release() {
	if e.buf.Cap() > 64<<10 { // a big reply's buffer is not worth keeping
		return
	}
	e.buf.Reset()
	encoders.Put(e)
}
