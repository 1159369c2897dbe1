package handlers

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/clusterd/clusterd/events"
)

// MaxBodyBytes bounds a request body; larger ones are refused before parsing.
const MaxBodyBytes = 1 << 20

// kind is the JSON type a field must have.
type kind int

const (
	kAny kind = iota
	kString
	kNumber
	kBool
	kArray
	kObject
)

// Field is one rule set of a request schema. Validation is data: each
// request type is a Schema, and one walker yields HarperDB's messages.
type Field struct {
	Name     string
	Kind     kind
	Required bool
	NonEmpty bool     // strings: not ""
	MaxLen   int      // strings: at most this many bytes (0 = no limit)
	OneOf    []string // strings
	Min      *float64 // numbers
	Max      *float64 // numbers
	Integer  bool     // numbers
	MinItems int      // arrays
	Items    Schema   // arrays of objects
	Date     bool     // strings: ISO 8601
	// Check adds problems a rule table cannot express; path is the quoted label.
	Check func(path string, v any) []string
}

// MaxSafeInteger is the largest integer every JSON client (JavaScript's
// Number included) reads exactly: the bound of counts and sequences.
const MaxSafeInteger = 1<<53 - 1

// Schema is the list of fields of an object.
type Schema []Field

func ptr(f float64) *float64 { return &f }

// decodeObject parses a request body into a JSON object (empty body = {}).
func decodeObject(body []byte) (map[string]any, error) {
	if len(body) > MaxBodyBytes {
		return nil, events.Errorf(400, "Invalid JSON body: body is %d bytes, larger than the %d byte limit", len(body), MaxBodyBytes)
	}
	switch string(bytes.TrimSpace(body)) {
	case "", "{}": // most read operations: no decoder needed
		return map[string]any{}, nil
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, events.Errorf(400, "Invalid JSON body: %s", strings.TrimPrefix(err.Error(), "json: "))
	}
	if dec.More() {
		return nil, events.Errorf(400, "Invalid JSON body: unexpected data after the JSON object")
	}
	m, ok := v.(map[string]any)
	if !ok {
		return nil, events.Errorf(400, "Invalid JSON body: expected a JSON object, got %s", jsonTypeName(v))
	}
	return m, nil
}

func jsonTypeName(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case string:
		return "a string"
	case json.Number, float64:
		return "a number"
	case bool:
		return "a boolean"
	case []any:
		return "an array"
	default:
		return "an object"
	}
}

// Validate checks obj against s, coercing numeric strings to numbers and
// "true"/"false" to booleans in place, and returns every problem found.
func (s Schema) Validate(obj map[string]any, prefix string) []string {
	var problems []string
	for _, f := range s {
		path := f.Name
		if prefix != "" {
			path = prefix + "." + f.Name
		}
		label := "'" + path + "'"
		v, present := obj[f.Name]
		if !present || v == nil {
			if f.Required {
				problems = append(problems, label+" is required")
			}
			continue
		}
		nv, ps := f.check(label, path, v)
		obj[f.Name] = nv
		problems = append(problems, ps...)
	}
	return problems
}

func (f Field) check(label, path string, v any) (any, []string) {
	var problems []string
	switch f.Kind {
	case kString:
		s, ok := v.(string)
		if !ok {
			return v, []string{label + " must be a string"}
		}
		if s == "" {
			if f.NonEmpty || len(f.OneOf) > 0 {
				return v, []string{label + " is not allowed to be empty"}
			}
		} else if len(f.OneOf) > 0 && !contains(f.OneOf, s) {
			problems = append(problems, fmt.Sprintf("%s must be one of [%s]", label, strings.Join(f.OneOf, ", ")))
		}
		if f.MaxLen > 0 && len(s) > f.MaxLen {
			problems = append(problems, fmt.Sprintf("%s length must be less than or equal to %d characters long", label, f.MaxLen))
		}
		if f.Date && s != "" {
			if _, msg := parseISODate(s); msg != "" {
				problems = append(problems, label+" "+msg)
			}
		}
	case kNumber:
		n, ok := toNumber(v)
		if !ok {
			return v, []string{label + " must be a number"}
		}
		v = n
		if math.IsInf(n, 0) {
			// Out of float64's range: only the range can be reported, and
			// the value must not travel on (JSON cannot carry ±Inf).
			v = nil
			if n > 0 && f.Max != nil {
				return v, []string{fmt.Sprintf("%s must be less than or equal to %s", label, fmtNum(*f.Max))}
			}
			if n < 0 && f.Min != nil {
				return v, []string{fmt.Sprintf("%s must be greater than or equal to %s", label, fmtNum(*f.Min))}
			}
			return v, []string{label + " must be a number"}
		}
		if f.Integer && n != math.Trunc(n) {
			problems = append(problems, label+" must be an integer")
		}
		if f.Min != nil && n < *f.Min {
			problems = append(problems, fmt.Sprintf("%s must be greater than or equal to %s", label, fmtNum(*f.Min)))
		}
		if f.Max != nil && n > *f.Max {
			problems = append(problems, fmt.Sprintf("%s must be less than or equal to %s", label, fmtNum(*f.Max)))
		}
	case kBool:
		b, ok := toBool(v)
		if !ok {
			return v, []string{label + " must be a boolean"}
		}
		v = b
	case kObject:
		m, ok := v.(map[string]any)
		if !ok {
			return v, []string{label + " must be of type object"}
		}
		if f.Items != nil {
			problems = append(problems, f.Items.Validate(m, path)...)
		}
	case kArray:
		arr, ok := v.([]any)
		if !ok {
			return v, []string{label + " must be an array"}
		}
		if len(arr) < f.MinItems {
			problems = append(problems, fmt.Sprintf("%s must contain at least %d items", label, f.MinItems))
		}
		if f.Items != nil {
			for i, it := range arr {
				ipath := fmt.Sprintf("%s[%d]", path, i)
				m, ok := it.(map[string]any)
				if !ok {
					problems = append(problems, "'"+ipath+"' must be of type object")
					continue
				}
				problems = append(problems, f.Items.Validate(m, ipath)...)
			}
		}
	}
	if f.Check != nil {
		problems = append(problems, f.Check(label, v)...)
	}
	return v, problems
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func fmtNum(f float64) string { return strconv.FormatFloat(f, 'f', -1, 64) }

// toNumber accepts JSON numbers and numeric strings ("9932").
func toNumber(v any) (float64, bool) {
	switch t := v.(type) {
	case json.Number:
		// A number beyond float64 (1e400) is still a number: ParseFloat
		// gives ±Inf with a range error, and the field's range refuses it.
		f, err := strconv.ParseFloat(string(t), 64)
		if err != nil && !errors.Is(err, strconv.ErrRange) {
			return 0, false
		}
		return f, !math.IsNaN(f)
	case float64:
		return t, true
	case string:
		s := strings.TrimSpace(t)
		if s == "" {
			return 0, false
		}
		f, err := strconv.ParseFloat(s, 64)
		if (err != nil && !errors.Is(err, strconv.ErrRange)) || math.IsNaN(f) || (math.IsInf(f, 0) && err == nil) {
			return 0, false // "Infinity", "NaN" are words, not numbers
		}
		return f, true
	}
	return 0, false
}

// toBool accepts JSON booleans and "true"/"false".
func toBool(v any) (bool, bool) {
	switch t := v.(type) {
	case bool:
		return t, true
	case string:
		switch t {
		case "true":
			return true, true
		case "false":
			return false, true
		}
	}
	return false, false
}

var isoDate = regexp.MustCompile(`^(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,9}))?)?(Z|[+-]\d{2}:?\d{2})?)?$`)

// parseISODate reads an ISO 8601 date or date-time. A date alone is midnight
// UTC, and so is a date-time without a zone. It returns a problem text when
// the string is not ISO 8601 or names no real instant.
func parseISODate(s string) (time.Time, string) {
	m := isoDate.FindStringSubmatch(s)
	if m == nil {
		return time.Time{}, "must be in ISO 8601 date format"
	}
	atoi := func(x string) int { n, _ := strconv.Atoi(x); return n }
	y, mo, d := atoi(m[1]), atoi(m[2]), atoi(m[3])
	hh, mm, ss := atoi(m[4]), atoi(m[5]), atoi(m[6])
	ns := 0
	if m[7] != "" {
		frac := m[7] + strings.Repeat("0", 9-len(m[7]))
		ns = atoi(frac)
	}
	loc := time.UTC
	if z := m[8]; z != "" && z != "Z" {
		z = strings.Replace(z, ":", "", 1)
		off := (atoi(z[1:3])*60 + atoi(z[3:5])) * 60
		if z[0] == '-' {
			off = -off
		}
		if atoi(z[1:3]) > 23 || atoi(z[3:5]) > 59 {
			return time.Time{}, "must be a valid date"
		}
		loc = time.FixedZone(z, off)
	}
	if mo < 1 || mo > 12 || d < 1 || hh > 23 || mm > 59 || ss > 59 {
		return time.Time{}, "must be a valid date"
	}
	t := time.Date(y, time.Month(mo), d, hh, mm, ss, ns, loc)
	if t.Day() != d || int(t.Month()) != mo {
		return time.Time{}, "must be a valid date"
	}
	return t.UTC(), ""
}

// validationError joins problems HarperDB's way.
func validationError(problems []string) error {
	if len(problems) == 0 {
		return nil
	}
	return events.Errorf(400, "%s", strings.Join(problems, ". "))
}

// decodeInto validates body against s and decodes the coerced object into out.
func decodeInto(body []byte, s Schema, out any) error {
	obj, err := decodeObject(body)
	if err != nil {
		return err
	}
	if err := validationError(s.Validate(obj, "")); err != nil {
		return err
	}
	return remarshal(obj, out)
}

func remarshal(obj any, out any) error {
	b, err := json.Marshal(obj)
	if err != nil {
		return fmt.Errorf("re-encode request: %w", err)
	}
	if err := json.Unmarshal(b, out); err != nil {
		// The schema has checked every field, so this is a value the
		// schema's range lets through but the request's type cannot hold.
		// Say which field, never the Go type.
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) && te.Field != "" {
			return events.Errorf(400, "'%s' is out of range", te.Field)
		}
		return events.Errorf(400, "Invalid JSON body: a value does not fit its field")
	}
	return nil
}
