package handlers

import (
	"strings"
	"testing"

	"github.com/clusterd/clusterd/events"
)

// FuzzUserOperations feeds arbitrary bodies to every user, role and token
// operation: no panic, no 5xx, no Go type in a message, and a refused
// request writes nothing.
func FuzzUserOperations(f *testing.F) {
	for _, s := range []string{
		`{}`, `[]`, `null`, `{"username":"a","password":"b","role":"super_user","active":true}`,
		`{"username":"a:b"}`, `{"username":1e400}`, `{"role":"r","permission":{"super_user":"x"}}`,
		`{"id":"x","permission":{"data":{"tables":{}}}}`, `{"refresh_token":"a.b.c"}`, `{"username":"admin","password":""}`,
		`{"active":"maybe","username":"admin"}`, "{\"username\":\"\u2028\"}",
	} {
		f.Add(s)
	}
	u := newUserOps(f)
	ops := u.Operations()
	f.Fuzz(func(t *testing.T, body string) {
		for _, op := range ops {
			if op.Name == "add_user" || op.Name == "alter_user" {
				// A success hashes a password (tens of ms): fuzz their
				// refusals, not the hash.
				if !strings.Contains(body, "\"") {
					continue
				}
			}
			before := u.Store.Commits()
			_, err := run(u, op.Name, admin, body)
			if err == nil {
				continue
			}
			e := events.AsError(err)
			if e.Status >= 500 {
				t.Fatalf("%s %q: %d %s", op.Name, body, e.Status, e.Message)
			}
			for _, goWord := range []string{"Go ", "struct", "unmarshal", "float64", "int64", "[]uint8", "map["} {
				if strings.Contains(e.Message, goWord) {
					t.Fatalf("%s %q: %q shows a Go type", op.Name, body, e.Message)
				}
			}
			if u.Store.Commits() != before {
				t.Fatalf("%s %q: refused (%s) but wrote", op.Name, body, e.Message)
			}
		}
	})
}
