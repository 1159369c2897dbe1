package topology

import (
	"strings"

	"github.com/clusterd/clusterd/storage"
)

// The transaction subject format, in one place: txn.<database>.<table>.<origin>.
// Every other file builds and reads subjects through these functions.
const txnToken = "txn"

// OriginSubject is the subject of a table's transactions from origin.
func OriginSubject(k storage.TableKey, origin string) string {
	return txnToken + "." + k.Database + "." + k.Table + "." + origin
}

// TableSubjects is the subject filter of a table's transactions from every origin.
func TableSubjects(k storage.TableKey) string {
	return txnToken + "." + k.Database + "." + k.Table + ".*"
}

// OriginSubjects is the subject filter of every table's transactions from origin.
func OriginSubjects(origin string) string { return txnToken + ".*.*." + origin }

// ParseSubject reads a transaction subject back; ok is false for any other.
func ParseSubject(s string) (k storage.TableKey, origin string, ok bool) {
	p := strings.Split(s, ".")
	if len(p) != 4 || p[0] != txnToken || p[1] == "" || p[2] == "" || p[3] == "" {
		return storage.TableKey{}, "", false
	}
	return storage.TableKey{Database: p[1], Table: p[2]}, p[3], true
}

// originSubjects renders a table list as the origin's subjects.
func originSubjects(tables []storage.TableKey, origin string) []string {
	out := make([]string, len(tables))
	for i, k := range tables {
		out[i] = OriginSubject(k, origin)
	}
	return out
}
