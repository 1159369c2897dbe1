package storage

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// MaxNameLen bounds database, table and node names: they become NATS
// subject tokens and storage keys.
const MaxNameLen = 250

// NameProblem says why name cannot be a database, table or node name, in
// HarperDB's words after the field label ("'table' invalid, <problem>"); ""
// when it can. One rule for every name that becomes a NATS subject token:
// what nats-server refuses in a token (., * and > as tokens, whitespace,
// NUL, invalid UTF-8), what a subject transform would read as a function
// ({{ and }}), and every character a terminal or log line would hide or
// reinterpret (Unicode Cc, Cf, Zl, Zp and spaces of any kind).
func NameProblem(name string) string {
	if name == "" {
		return "must not be empty"
	}
	if len(name) > MaxNameLen {
		return fmt.Sprintf("must be at most %d bytes long", MaxNameLen)
	}
	if !utf8.ValidString(name) {
		return "must be valid UTF-8"
	}
	if strings.ContainsAny(name, ".*>") {
		return "must not contain ., * or >"
	}
	if strings.Contains(name, "{{") || strings.Contains(name, "}}") {
		return "must not contain {{ or }}"
	}
	for _, r := range name {
		switch {
		case r == utf8.RuneError:
			return "must be valid UTF-8"
		case unicode.IsSpace(r) || unicode.In(r, unicode.Zs, unicode.Zl, unicode.Zp):
			return fmt.Sprintf("must not contain whitespace (found %U)", r)
		case unicode.In(r, unicode.Cc, unicode.Cf) || !unicode.IsGraphic(r):
			// !IsGraphic: private use, surrogates and unassigned code points.
			return fmt.Sprintf("must not contain control, format or unassigned characters (found %U)", r)
		}
	}
	return ""
}

// BadName is a stored name that breaks NameProblem's rule (stored before the
// rule existed): it cannot be replicated, and is reported where it lives.
type BadName struct {
	Peer    string   // the node record it was found in
	Table   TableKey // zero when the peer's own name is the problem
	Problem string
}

func (b BadName) String() string {
	if b.Table == (TableKey{}) {
		return fmt.Sprintf("node %q: %s", b.Peer, b.Problem)
	}
	if b.Peer == "" {
		return fmt.Sprintf("table %s.%s: %s", b.Table.Database, b.Table.Table, b.Problem)
	}
	return fmt.Sprintf("table %s.%s of node %s: %s", b.Table.Database, b.Table.Table, b.Peer, b.Problem)
}

// TableNameProblem applies NameProblem to a table's database and table
// names, saying which one breaks it.
func TableNameProblem(k TableKey) string {
	if p := NameProblem(k.Database); p != "" {
		return fmt.Sprintf("database name %q %s", k.Database, p)
	}
	if p := NameProblem(k.Table); p != "" {
		return fmt.Sprintf("table name %q %s", k.Table, p)
	}
	return ""
}

// BadNames lists the names stored in node records and tables that break the
// rule. Never an error for the rest: callers leave these out and go on.
func (s *Store) BadNames() ([]BadName, error) {
	nodes, err := s.Nodes()
	if err != nil {
		return nil, err
	}
	var out []BadName
	for _, n := range nodes {
		if p := NameProblem(n.Name); p != "" {
			out = append(out, BadName{Peer: n.Name, Problem: p})
			continue
		}
		for _, sub := range n.Subscriptions {
			if p := TableNameProblem(sub.Key()); p != "" {
				out = append(out, BadName{Peer: n.Name, Table: sub.Key(), Problem: p})
			}
		}
	}
	tables, err := s.Tables()
	if err != nil {
		return nil, err
	}
	for _, t := range tables {
		if p := TableNameProblem(t.TableKey); p != "" {
			out = append(out, BadName{Table: t.TableKey, Problem: p})
		}
	}
	return out, nil
}
