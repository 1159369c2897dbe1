package handlers

import (
	"strings"
	"testing"
)

// numberFields walks a schema and calls fn for every number field with the
// body that places a value there.
func numberFields(s Schema, label string, wrap func(any) any, fn func(label string, f Field, at func(any) any)) {
	for _, f := range s {
		f := f
		l := f.Name
		if label != "" {
			l = label + "." + f.Name
		}
		at := func(v any) any { return wrap(map[string]any{f.Name: v}) }
		switch {
		case f.Kind == kNumber:
			fn(l, f, at)
		case f.Kind == kArray && f.Items != nil:
			numberFields(f.Items, l+"[0]", func(v any) any { return at([]any{v}) }, fn)
		case f.Kind == kObject && f.Items != nil:
			numberFields(f.Items, l, at, fn)
		}
	}
}

// Every numeric field has a range, and values beyond it — overflow on
// conversion included — are a 400 naming the field, never a Go type.
func TestEveryNumberFieldHasARange(t *testing.T) {
	o := newOps(t)
	runs := map[string]runner{}
	for _, op := range o.Operations() {
		runs[op.Name] = op.Run
	}
	for op, s := range o.requestSchemas() {
		numberFields(s, "", func(v any) any { return v }, func(label string, f Field, at func(any) any) {
			if f.Min == nil || f.Max == nil {
				t.Errorf("%s: '%s' has no range (Min and Max)", op, label)
				return
			}
			for _, raw := range []string{"1e300", "1e30", "1e400", "-1e400", `"1e400"`, "-1e300", "123456789012345678901234567890"} {
				body := strings.Replace(mustJSON(t, at("@@")), `"@@"`, raw, 1)
				got := reject(t, o, runs[op], body)
				if !strings.Contains(got, "'"+label+"' must be") {
					t.Errorf("%s %s: %q does not name the field's range", op, body, got)
				}
				for _, goWord := range []string{"Go ", "uint", "int64", "float64", "struct", "unmarshal"} {
					if strings.Contains(got, goWord) {
						t.Errorf("%s %s: %q shows a Go type", op, body, got)
					}
				}
			}
		})
	}
}
