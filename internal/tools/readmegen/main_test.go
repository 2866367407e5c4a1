package main

import (
	"os"
	"strings"
	"testing"

	"github.com/pagesend/pagesend/graphapi"
)

// TestREADMEUpToDate fails when README.md's error table differs from what
// graphapi.Rules renders. Fix with `make readme`.
func TestREADMEUpToDate(t *testing.T) {
	data, err := os.ReadFile("../../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	want, err := splice(string(data), errorTable())
	if err != nil {
		t.Fatal(err)
	}
	if string(data) != want {
		t.Fatal("README.md's error table is out of date with graphapi.Rules: run `make readme`")
	}
}

func TestErrorTableHasEveryRule(t *testing.T) {
	table := errorTable()
	for _, r := range graphapi.Rules() {
		row := "| " + r.Class.String() + " | " + codeText(r) + " | " + r.Meaning + " |"
		if !strings.Contains(table, row) {
			t.Errorf("table lacks row %q", row)
		}
	}
}

func TestSpliceNeedsMarkers(t *testing.T) {
	if _, err := splice("no markers here", "x"); err == nil {
		t.Error("splice accepted a document without markers")
	}
	got, err := splice("a\n"+beginMarker+"\nold\n"+endMarker+"\nb", "new\n")
	if err != nil || got != "a\n"+beginMarker+"\nnew\n"+endMarker+"\nb" {
		t.Errorf("splice = %q, %v", got, err)
	}
}
