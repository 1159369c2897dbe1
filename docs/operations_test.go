// Package docs_test keeps the documentation in this folder true: the
// operations reference against the validation schemas and the error messages
// in the source, and its transcripts against a real run.
package docs_test

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/clusterd/clusterd/handlers"
)

// sections splits the reference into "## `<operation>`" sections.
func sections(t *testing.T, doc string) map[string]string {
	t.Helper()
	out := map[string]string{}
	parts := regexp.MustCompile("(?m)^## `([a-z_]+)`\\s*$").Split(doc, -1)
	names := regexp.MustCompile("(?m)^## `([a-z_]+)`\\s*$").FindAllStringSubmatch(doc, -1)
	for i, n := range names {
		body := parts[i+1]
		if j := strings.Index(body, "\n## "); j >= 0 {
			body = body[:j]
		}
		out[n[1]] = body
	}
	return out
}

// docIndices writes a message's array indices as the reference does:
// [0] → [<i>], a second level → [<j>].
func docIndices(m string) string {
	n := 0
	return regexp.MustCompile(`\[0\]`).ReplaceAllStringFunc(m, func(string) string {
		n++
		if n == 1 {
			return "[<i>]"
		}
		return "[<j>]"
	})
}

// Every operation has a section with its subjects, HTTP form, role, 403
// handler name and semantics; every request field of its schema is listed
// with every message the validator gives about it.
func TestOperationsReferenceMatchesSchemas(t *testing.T) {
	b, err := os.ReadFile(opsDoc)
	if err != nil {
		t.Fatal(err)
	}
	doc := string(b)
	secs := sections(t, doc)
	schemas := handlers.Schemas()
	ops := (&handlers.Ops{}).Operations()
	served := map[string]bool{}
	for _, op := range ops {
		served[op.Name] = true
		sec, ok := secs[op.Name]
		if !ok {
			t.Errorf("%s has no section \"## `%s`\"", opsDoc, op.Name)
			continue
		}
		for _, want := range []string{
			"`ops.cluster." + op.Name + "`",
			"`ops.node.<name>.cluster." + op.Name + "`",
			`"operation":"` + op.Name + `"`,
			"`super_user`",
			"`" + op.Handler + "`",
			"**Semantics**",
		} {
			if !strings.Contains(sec, want) {
				t.Errorf("section %s does not mention %s", op.Name, want)
			}
		}
		fields, ok := schemas[op.Name]
		// "Request fields: as for `add_node`": listed in that section.
		if m := regexp.MustCompile("Request fields: as for `([a-z_]+)`").FindStringSubmatch(sec); m != nil {
			if !reflect.DeepEqual(fields, schemas[m[1]]) {
				t.Errorf("section %s refers to %s's request fields, but they differ", op.Name, m[1])
			}
			sec = secs[m[1]]
		}
		if !ok {
			t.Errorf("operation %s has no request schema in handlers.Schemas (add it to requestSchemas)", op.Name)
			continue
		}
		if len(fields) == 0 && !strings.Contains(sec, "No request fields") {
			t.Errorf("section %s: say \"No request fields\" for an operation without any", op.Name)
		}
		for _, f := range fields {
			if !strings.Contains(sec, "`"+f.Path+"`") {
				t.Errorf("section %s does not list field `%s`", op.Name, f.Path)
			}
			for _, m := range f.Messages {
				if want := docIndices(m); !strings.Contains(sec, want) {
					t.Errorf("section %s lacks the message %q", op.Name, want)
				}
			}
		}
	}
	for name := range secs {
		if !served[name] {
			t.Logf("section %s documents an operation this build does not serve", name)
		}
	}
}

// message is an error text in the source: literal parts with wildcards for
// what is filled in at run time.
type message struct {
	where string
	parts []string
}

func (m message) regexp() *regexp.Regexp {
	q := make([]string, len(m.parts))
	for i, p := range m.parts {
		q[i] = regexp.QuoteMeta(p)
	}
	return regexp.MustCompile(strings.Join(q, ".+?"))
}

var verbRE = regexp.MustCompile(`%[-+# 0-9.]*[sdvqwf]`)

// literalParts flattens "a" + x + "b" and format strings into literal parts.
func literalParts(e ast.Expr, format bool) ([]string, bool) {
	switch v := e.(type) {
	case *ast.BasicLit:
		if v.Kind != token.STRING {
			return nil, false
		}
		s, err := strconv.Unquote(v.Value)
		if err != nil {
			return nil, false
		}
		if format {
			return verbRE.Split(s, -1), true
		}
		return []string{s}, true
	case *ast.BinaryExpr:
		l, lok := literalParts(v.X, format)
		r, rok := literalParts(v.Y, format)
		if !lok && !rok {
			return nil, false
		}
		if !lok {
			l = []string{""}
		}
		if !rok {
			r = []string{""}
		}
		return append(l, r...), true
	case *ast.CallExpr: // fmt.Sprintf("…", …) as an argument
		if sel, ok := v.Fun.(*ast.SelectorExpr); ok && sel.Sel.Name == "Sprintf" && len(v.Args) > 0 {
			return literalParts(v.Args[0], true)
		}
	}
	return nil, false
}

// tokenReasonFuncs are the verifier's functions whose errors become
// "Unauthorized: <reason>".
var tokenReasonFuncs = map[string]bool{"verify": true, "Verify": true, "usableAt": true, "checkAudience": true, "numericDate": true}

// sourceMessages collects the error messages users can receive: every
// Errorf/Wrap status error, every Error{Message: …}, the validation problems
// built with Sprintf("'…"), and the token refusal reasons.
func sourceMessages(t *testing.T) []message {
	t.Helper()
	var out []message
	for _, dir := range []string{"../handlers", "../events", "../auth"} {
		files, _ := filepath.Glob(filepath.Join(dir, "*.go"))
		for _, file := range files {
			if strings.HasSuffix(file, "_test.go") {
				continue
			}
			fset := token.NewFileSet()
			f, err := parser.ParseFile(fset, file, nil, 0)
			if err != nil {
				t.Fatal(err)
			}
			add := func(n ast.Node, e ast.Expr, format bool) {
				parts, ok := literalParts(e, format)
				if !ok {
					return
				}
				text := strings.Join(parts, "")
				if len(strings.TrimSpace(text)) < 8 {
					return // "%s": built elsewhere
				}
				out = append(out, message{where: fset.Position(n.Pos()).String(), parts: parts})
			}
			var fn string
			ast.Inspect(f, func(n ast.Node) bool {
				switch v := n.(type) {
				case *ast.FuncDecl:
					fn = v.Name.Name
				case *ast.ReturnStmt:
					// Token refusal reasons: what the verifier's functions
					// return as errors (auth/token.go).
					if dir != "../auth" || !tokenReasonFuncs[fn] || len(v.Results) == 0 {
						return true
					}
					last, ok := v.Results[len(v.Results)-1].(*ast.CallExpr)
					if !ok {
						return true
					}
					switch {
					case isSel(last.Fun, "errors", "New"):
						add(v, last.Args[0], false)
					case isSel(last.Fun, "fmt", "Errorf"):
						add(v, last.Args[0], true)
					}
				case *ast.CallExpr:
					name := ""
					switch fun := v.Fun.(type) {
					case *ast.SelectorExpr:
						name = fun.Sel.Name
						if x, ok := fun.X.(*ast.Ident); ok && x.Name == "fmt" && name == "Errorf" {
							return true // wrapped causes, not replies
						}
					case *ast.Ident:
						name = fun.Name
					}
					switch {
					case name == "refuse" && len(v.Args) == 2: // auth's 401/429 refusals
						add(v, v.Args[1], false)
					case name == "Errorf" && len(v.Args) >= 2:
						add(v, v.Args[1], true)
					case name == "Wrap" && len(v.Args) == 3:
						add(v, v.Args[2], false)
					case name == "Sprintf" && len(v.Args) > 0:
						if lit, ok := v.Args[0].(*ast.BasicLit); ok && strings.HasPrefix(lit.Value, `"'`) {
							add(v, v.Args[0], true)
						}
					}
				case *ast.CompositeLit:
					if typ, ok := v.Type.(*ast.Ident); ok && typ.Name == "Error" || isSel(v.Type, "events", "Error") {
						for _, el := range v.Elts {
							if kv, ok := el.(*ast.KeyValueExpr); ok {
								if k, ok := kv.Key.(*ast.Ident); ok && k.Name == "Message" {
									add(v, kv.Value, false)
								}
							}
						}
					}
				}
				return true
			})
		}
	}
	return out
}

func isIdent(e ast.Expr, name string) bool { id, ok := e.(*ast.Ident); return ok && id.Name == name }

func isSel(e ast.Expr, pkg, name string) bool {
	s, ok := e.(*ast.SelectorExpr)
	if !ok {
		return false
	}
	x, ok := s.X.(*ast.Ident)
	return ok && x.Name == pkg && s.Sel.Name == name
}

// Every error message in the source appears in the reference (with its
// run-time parts written as placeholders).
func TestOperationsReferenceListsEveryErrorMessage(t *testing.T) {
	b, err := os.ReadFile(opsDoc)
	if err != nil {
		t.Fatal(err)
	}
	doc := string(b)
	msgs := sourceMessages(t)
	if len(msgs) < 20 {
		t.Fatalf("found only %d messages in the source; is the scan broken?", len(msgs))
	}
	for _, m := range msgs {
		if !m.regexp().MatchString(doc) {
			t.Errorf("%s: message %q is not in %s", m.where, strings.Join(m.parts, "<…>"), opsDoc)
		}
	}
}
