package httpapi

import (
	"net/http"
	"os"
	"regexp"
	"strings"
	"testing"
)

// TestREADMEBodies posts the JSON bodies of README's "HTTP API" examples,
// so that any the server takes is also checked against the document.
// (cmd/pagesend runs the examples themselves, curl by curl.)
func TestREADMEBodies(t *testing.T) {
	data, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	readme := string(data)
	start := strings.Index(readme, "\n## HTTP API\n")
	if start < 0 {
		t.Fatal("README has no HTTP API section")
	}
	section := readme[start+1:]
	if end := strings.Index(section[3:], "\n## "); end >= 0 {
		section = section[:end+3]
	}
	var bodies []string
	for _, m := range regexp.MustCompile(`(?s)<<'JSON'\n(.*?)\nJSON\n`).FindAllStringSubmatch(section, -1) {
		bodies = append(bodies, m[1])
	}
	for _, m := range regexp.MustCompile(`--data '([^']*)'`).FindAllStringSubmatch(section, -1) {
		bodies = append(bodies, m[1])
	}
	if len(bodies) < 3 {
		t.Fatalf("found %d bodies in README's HTTP API section", len(bodies))
	}
	e := newEnv(t)
	accepted := 0
	for _, b := range bodies {
		r := e.post("/v1/messages", writeSecret, b)
		switch r.Status {
		case http.StatusAccepted, http.StatusOK:
			accepted++
		case http.StatusBadRequest: // README's example of an invalid batch
		default:
			t.Errorf("README body answered %d %s:\n%s", r.Status, r.Body, b)
		}
	}
	if accepted < 2 {
		t.Errorf("only %d README bodies were accepted", accepted)
	}
}
