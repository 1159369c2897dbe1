package topology

import (
	"testing"
	"time"

	"github.com/clusterd/clusterd/storage"
)

func TestForgetDepartedKeepsOnlyCurrentShards(t *testing.T) {
	m := map[string]time.Time{"a/1": time.Now(), "gone/3": time.Now()}
	forgetDeparted(m, map[string][]sourceGroup{"a/1": {{Peer: "a"}}})
	if _, ok := m["gone/3"]; ok || len(m) != 1 {
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
