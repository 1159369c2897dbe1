package handlers

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"
)

// FieldInfo describes one request field as the validator checks it, for
// documentation and its tests.
type FieldInfo struct {
	// Path names the field in the body: "routes[].port".
	Path string
	// Type is the JSON type: string, number, boolean, array or object.
	Type     string
	Required bool
	// Messages are every message the schema gives about this field, as the
	// validator words them, with index 0 for array elements
	// ("'routes[0].port' must be a number"). Messages the operation adds
	// beyond its schema are not listed.
	Messages []string
}

// DocNodeName is the node name Schemas validates node names against (for
// "'node_name' cannot be this nodes name").
const DocNodeName = "this-node"

// requestSchemas maps each operation to the schema of its body (nil: no
// fields). Add an entry with every new operation: docs/operations.md is
// checked against it.
func (o *Ops) requestSchemas() map[string]Schema {
	m := map[string]Schema{
		"cluster_set_routes":    setRoutesSchema,
		"cluster_get_routes":    nil,
		"cluster_delete_routes": deleteRoutesSchema,
		"add_node":              o.nodeSchema(),
		"update_node":           o.nodeSchema(),
		"set_node_replication":  o.nodeSchema(),
		"remove_node":           o.removeNodeSchema(),
		"configure_cluster":     o.configureSchema(),
		"create_table":          createTableSchema,
		"describe_all":          nil,
		"cluster_status":        nil,
		"cluster_network":       clusterNetworkSchema,
		"purge_stream":          purgeStreamSchema,
	}
	for op, s := range userSchemas() {
		m[op] = s
	}
	return m
}

// Schemas returns, for every operation with a registered request schema, its
// fields in schema order (an empty list for operations that take none). It
// is built afresh on each call; changing it changes nothing.
func Schemas() map[string][]FieldInfo {
	o := New(Ops{NodeName: DocNodeName, Store: docStore{}})
	out := map[string][]FieldInfo{}
	for op, s := range o.requestSchemas() {
		fields := []FieldInfo{}
		describeSchema(s, s, "", "", func(v any) any { return v }, &fields)
		out[op] = fields
	}
	return out
}

var kindNames = map[kind]string{kAny: "any", kString: "string", kNumber: "number", kBool: "boolean", kArray: "array", kObject: "object"}

// describeSchema walks s (a part of root at docPath/labelPath) and finds each
// field's messages by validating probe bodies built with wrap, which places a
// value where s sits in a whole request.
func describeSchema(root, s Schema, docPath, labelPath string, wrap func(any) any, out *[]FieldInfo) {
	join := func(prefix, name string) string {
		if prefix == "" {
			return name
		}
		return prefix + "." + name
	}
	for _, f := range s {
		f := f
		label := join(labelPath, f.Name)
		info := FieldInfo{Path: join(docPath, f.Name), Type: kindNames[f.Kind], Required: f.Required}
		at := func(v any) any { return wrap(map[string]any{f.Name: v}) }
		probes := []any{wrap(map[string]any{})} // missing
		probes = append(probes, probeValues(f)...)
		seen := map[string]bool{}
		for i, p := range probes {
			body := p
			if i > 0 {
				body = at(p)
			}
			for _, m := range validateProbe(root, body) {
				if (strings.HasPrefix(m, "'"+label+"' ") || strings.HasPrefix(m, "'"+label+"[0]' ")) && !seen[m] {
					seen[m] = true
					info.Messages = append(info.Messages, m)
				}
			}
		}
		sort.Strings(info.Messages)
		*out = append(*out, info)
		switch {
		case f.Kind == kArray && f.Items != nil:
			describeSchema(root, f.Items, info.Path+"[]", label+"[0]", func(v any) any { return at([]any{v}) }, out)
		case f.Kind == kObject && f.Items != nil:
			describeSchema(root, f.Items, info.Path, label, at, out)
		}
	}
}

// probeValues are values that break each of f's rules in turn.
func probeValues(f Field) []any {
	var p []any
	switch f.Kind {
	case kString:
		p = append(p, 12, "")
		if f.MaxLen > 0 {
			p = append(p, strings.Repeat("a", f.MaxLen+1))
		}
		if len(f.OneOf) > 0 {
			p = append(p, "zzz")
		}
		if f.Date {
			p = append(p, "yesterday", "2024-02-30")
		}
	case kNumber:
		p = append(p, "lots")
		if f.Integer {
			p = append(p, 1.5)
		}
		if f.Min != nil {
			p = append(p, *f.Min-1)
		}
		if f.Max != nil {
			p = append(p, *f.Max+1)
		}
	case kBool:
		p = append(p, "maybe")
	case kArray:
		p = append(p, "x", []any{})
		if f.Items != nil {
			p = append(p, []any{"x"})
		}
	case kObject:
		p = append(p, "x")
	}
	if f.Check != nil {
		p = append(p, "a.b", "a b", ReservedDatabase, DocNodeName)
	}
	return p
}

// validateProbe validates body as a request of schema s would be, after a
// JSON round trip (numbers arrive as the decoder gives them).
func validateProbe(s Schema, body any) []string {
	b, err := json.Marshal(body)
	if err != nil {
		panic(fmt.Sprintf("probe body: %v", err))
	}
	obj, err := decodeObject(b)
	if err != nil {
		panic(fmt.Sprintf("probe body: %v", err))
	}
	return s.Validate(obj, "")
}
