package node_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/clusterd/clusterd/node/nodetest"
)

// TestFaultDiskFull puts a node's rootPath on a small tmpfs, fills it, and
// checks that a change is refused with a clear 503 (no crash, no SIGBUS), the
// node keeps answering reads, and writes work again once space is freed.
func TestFaultDiskFull(t *testing.T) {
	dir := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=256m", "tmpfs", dir).CombinedOutput(); err != nil {
		t.Skipf("cannot mount a tmpfs here (needs root): %v %s", err, out)
	}
	t.Cleanup(func() { _ = exec.Command("umount", "-l", dir).Run() })
	cfg := nodetest.Config(t, "a")
	cfg.RootPath = filepath.Join(dir, "data")
	n := nodetest.Start(t, cfg)
	op(t, n, "cluster_set_routes", map[string]any{"server": "hub", "routes": []any{map[string]any{"host": "127.0.0.1", "port": 1}}}, 200)

	// Leave ~16 MiB free: under the 64 MiB the store insists on.
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		t.Fatal(err)
	}
	free := int64(st.Bavail) * int64(st.Bsize)
	filler := filepath.Join(dir, "filler")
	f, err := os.Create(filler)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write(make([]byte, free-16<<20)); err != nil {
		t.Fatalf("fill: %v", err)
	}
	f.Close()

	r := nodetest.Op(t, n, "cluster_set_routes", map[string]any{"server": "hub", "routes": []any{map[string]any{"host": "127.0.0.1", "port": 2}}})
	if r.Status != 503 || !strings.Contains(r.Error(), "not enough free disk space") {
		t.Fatalf("write on a full disk: %d %s", r.Status, r.Body)
	}
	if got := nodetest.Op(t, n, "cluster_get_routes", "{}"); got.Status != 200 || strings.Contains(string(got.Body), `"port":2`) {
		t.Fatalf("read on a full disk: %d %s", got.Status, got.Body)
	}
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	// The file system may report the space a moment after the unlink: the
	// write is taken once it does.
	var last nodetest.Reply
	nodetest.Eventually(t, 10*time.Second, "a write once space is back", func() bool {
		last = nodetest.Op(t, n, "cluster_set_routes", map[string]any{"server": "hub", "routes": []any{map[string]any{"host": "127.0.0.1", "port": 2}}})
		if last.Status != 200 && last.Status != 503 {
			t.Fatalf("write after space returned: %d %s", last.Status, last.Body)
		}
		return last.Status == 200
	})
	if got := nodetest.Op(t, n, "cluster_get_routes", "{}"); !strings.Contains(string(got.Body), `"port":2`) {
		t.Fatalf("write after space returned was lost: %s", got.Body)
	}
}
