package events

import (
	"crypto/ed25519"
	"crypto/rand"
	"testing"
	"time"

	"github.com/clusterd/clusterd/auth"
)

// FuzzAuthenticate feeds arbitrary Authorization headers to the
// authenticator: it must never panic, must refuse with a 401 (or 429) and a
// message, and must only accept tokens signed by a trusted key.
func FuzzAuthenticate(f *testing.F) {
	pub, key, _ := ed25519.GenerateKey(rand.Reader)
	good, _ := auth.Mint(key, "admin", SuperUser, time.Hour)
	f.Add("Bearer " + good)
	f.Add("Bearer " + good + "x")
	f.Add("bearer  " + good)
	f.Add("Basic abc")
	f.Add("Basic YWRtaW46cGFzcw==")
	f.Add("Bearer a.b.c")
	f.Add("Bearer eyJhbGciOiJub25lIn0.eyJyb2xlIjoic3VwZXJfdXNlciJ9.")
	f.Add("")
	a := auth.NewAuthenticator(auth.NewVerifier(auth.Limits{}, pub), nil)
	f.Fuzz(func(t *testing.T, header string) {
		c, err := a.Authenticate(header)
		if err != nil {
			r, ok := err.(*auth.Refusal)
			if !ok || (r.Status != 401 && r.Status != 429) || r.Message == "" {
				t.Fatalf("refusal of %q: %#v", header, err)
			}
			return
		}
		if c.User == "" || c.Role == "" {
			t.Fatalf("accepted %q with no user or role", header)
		}
	})
}
