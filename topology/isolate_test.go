package topology

import (
	"testing"
	"time"

	"github.com/clusterd/clusterd/storage"
)

func TestForgetDepartedKeepsOnlyCurrentLanes(t *testing.T) {
	m := map[string]time.Time{"repl_x_1": time.Now(), "repl_x_gone": time.Now()}
	forgetDeparted(m, map[string][]lane{"a": {{Peer: "a", Name: "repl_x_1"}}})
	if _, ok := m["repl_x_gone"]; ok || len(m) != 1 {
		t.Fatalf("bookkeeping after a peer left: %v", m)
	}
}

func TestValidName(t *testing.T) {
	for _, c := range []struct {
		peer string
		k    storage.TableKey
		want bool
	}{
		{"b", storage.TableKey{Database: "data", Table: "dog"}, true},
		{"b", storage.TableKey{}, true},
		{"b\u00a0", storage.TableKey{Database: "data", Table: "dog"}, false},
		{"b", storage.TableKey{Database: "data", Table: "bad\fname"}, false},
		{"b", storage.TableKey{Database: "d\x00", Table: "dog"}, false},
	} {
		if got := validName(c.peer, c.k); got != c.want {
			t.Errorf("validName(%q, %v) = %v", c.peer, c.k, got)
		}
	}
}
