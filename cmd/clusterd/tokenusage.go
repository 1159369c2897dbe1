package main

import (
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/clusterd/clusterd/node"
)

// printTokenUsage shows, on stderr (stdout holds only the token, for
// TOKEN=$(clusterd token …)), how to call the node with the token over its
// operations API (HTTPS with the CA to trust when it runs) and over NATS.
func printTokenUsage(w io.Writer, cfg node.Config) {
	url, ca := cfg.OperationsClientURL()
	cacert := ""
	if ca != "" {
		cacert = "--cacert " + shellQuote(ca) + " "
	}
	fmt.Fprintf(w, "# with the token in $TOKEN:\n"+
		"#   curl %s-H \"Authorization: Bearer $TOKEN\" -d '{\"operation\":\"cluster_status\"}' %s/\n"+
		"#   nats req ops.cluster.cluster_status '{}' -H \"Authorization:Bearer $TOKEN\"\n", cacert, url)
}

// shellQuote quotes s for a POSIX shell when it needs it.
func shellQuote(s string) string {
	for _, r := range s {
		if !(r == '/' || r == '.' || r == '-' || r == '_' || r == ':' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z') {
			return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
		}
	}
	return s
}

// stderrIsTerminal: w is a terminal (a person reads it), not a pipe or file.
func stderrIsTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}
