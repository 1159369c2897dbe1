package handlers

import (
	"slices"
	"testing"
)

// Every operation has a request schema registered for the docs (nil for
// operations without fields): a new operation must be added to
// requestSchemas, or docs/operations.md cannot be checked against it.
func TestEveryOperationHasARequestSchema(t *testing.T) {
	schemas := Schemas()
	for _, op := range (&Ops{}).Operations() {
		if _, ok := schemas[op.Name]; !ok {
			t.Errorf("operation %s is not in requestSchemas", op.Name)
		}
	}
}

func TestSchemasDescribeFieldsAndMessages(t *testing.T) {
	s := Schemas()
	var paths []string
	for _, f := range s["cluster_set_routes"] {
		paths = append(paths, f.Path)
	}
	if !slices.Equal(paths, []string{"server", "routes", "routes[].host", "routes[].port"}) {
		t.Fatalf("cluster_set_routes fields %v", paths)
	}
	port := s["cluster_set_routes"][3]
	want := []string{
		"'routes[0].port' is required",
		"'routes[0].port' must be a number",
		"'routes[0].port' must be an integer",
		"'routes[0].port' must be greater than or equal to 0",
		"'routes[0].port' must be less than or equal to 65535",
	}
	if port.Type != "number" || !port.Required || !slices.Equal(port.Messages, want) {
		t.Fatalf("routes[].port = %+v", port)
	}
	name := s["add_node"][0]
	if !slices.Contains(name.Messages, "'node_name' cannot be this nodes name") || !slices.Contains(name.Messages, "'node_name' invalid, must not contain ., * or >") {
		t.Fatalf("add_node node_name messages %v", name.Messages)
	}
	if f := s["cluster_get_routes"]; f == nil || len(f) != 0 {
		t.Fatalf("cluster_get_routes fields %v, want an empty list", f)
	}
	// Callers cannot change what the next call returns.
	s["add_node"][0].Messages[0] = "changed"
	if Schemas()["add_node"][0].Messages[0] == "changed" {
		t.Fatal("Schemas shares state between calls")
	}
}
