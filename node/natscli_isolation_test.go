package node_test

import (
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/clusterd/clusterd/node"
)

// natsAs runs the nats CLI against n's leaf port as user, returning its
// output and whether it succeeded.
func natsAs(t *testing.T, n *node.Node, user, pass string) func(args ...string) (string, bool) {
	bin := natsCLI(t)
	home := t.TempDir()
	return func(args ...string) (string, bool) {
		t.Helper()
		full := append([]string{"--server", n.LeafURL(), "--user", user, "--password", pass, "--timeout", "2s"}, args...)
		cmd := exec.Command(bin, full...)
		cmd.Env = append(os.Environ(), "HOME="+home, "XDG_CONFIG_HOME="+home, "NATS_CONTEXT=")
		out, err := cmd.CombinedOutput()
		return string(out), err == nil
	}
}

// A data service's NATS work with the real nats CLI, as its own user on a
// two-node mesh: it writes its node's transactions and reads the stream
// every way the CLI offers, while the administrative commands are refused
// and change nothing.
func TestNatsCLIDataServiceIsolation(t *testing.T) {
	p := isolatedPair(t)
	for who, cred := range map[string][2]string{"service": {svcUser, svcPass}, "operator": {p.a.OperatorUser(), p.a.OperatorPassword()}} {
		nats := natsAs(t, p.a, cred[0], cred[1])
		must := func(args ...string) string {
			t.Helper()
			out, ok := nats(args...)
			if !ok {
				t.Fatalf("%s: nats %s failed:\n%s", who, strings.Join(args, " "), out)
			}
			return out
		}
		refused := func(args ...string) {
			t.Helper()
			if out, ok := nats(args...); ok {
				t.Errorf("%s: nats %s succeeded:\n%s", who, strings.Join(args, " "), out)
			}
		}
		if out := must("pub", "--jetstream", "txn.dev.dog.a", "cli-"+who); !strings.Contains(out, "Stream: txn") {
			t.Fatalf("%s: publish not acknowledged by txn:\n%s", who, out)
		}
		must("stream", "info", "txn")
		must("stream", "get", "txn", "--last-for", "txn.dev.dog.a")
		// stream view pages on a terminal only: give it one when script(1)
		// is there.
		if script, err := exec.LookPath("script"); err == nil {
			line := strings.Join([]string{natsCLI(t), "--server", p.a.LeafURL(), "--user", cred[0], "--password", cred[1],
				"stream", "view", "txn", "--subject", "'txn.dev.dog.*'", "--since", "1h"}, " ")
			cmd := exec.Command(script, "-qec", line, "/dev/null")
			cmd.Env = append(os.Environ(), "HOME="+t.TempDir(), "NATS_CONTEXT=")
			if out, err := cmd.CombinedOutput(); err != nil || !strings.Contains(string(out), "cli-"+who) {
				t.Errorf("%s: stream view does not show the write (%v):\n%s", who, err, out)
			}
		}
		must("consumer", "add", "txn", "cli-"+who, "--pull", "--filter", "txn.dev.dog.*", "--deliver", "all", "--ack", "explicit", "--defaults")
		if out := must("consumer", "next", "txn", "cli-"+who, "--count", "1"); !strings.Contains(out, "txn.dev.dog.") {
			t.Errorf("%s: consumer next:\n%s", who, out)
		}
		must("consumer", "rm", "txn", "cli-"+who, "-f")

		refused("stream", "add", "spy", "--subjects", "ops.>", "--defaults")
		refused("stream", "purge", "txn", "-f")
		refused("stream", "rm", "txn", "-f")
		refused("stream", "rmm", "txn", "1", "-f")
		refused("consumer", "add", "txn", "push-"+who, "--target", "_clusterd.node.b.node_remove", "--defaults")
		refused("pub", "--jetstream", "txn.dev.dog.b", "forged")
	}
	p.intact(t)
}
