package httpapi

import (
	"fmt"
	"strings"
	"testing"

	"github.com/pagesend/pagesend/graphapi"
)

func TestParseKeys(t *testing.T) {
	long := strings.Repeat("k", 40)
	tests := []struct {
		in      string
		names   []string
		wantErr string
	}{
		{"", nil, ""},
		{" producer:" + long + " , ops:" + long + "2 ", []string{"producer", "ops"}, ""},
		{long, []string{"fp:" + graphapi.Fingerprint(graphapi.Secret(long))}, ""},
		{"p:" + long + ":with:colons", []string{"p"}, ""},
		{",," + long + ",", []string{"fp:" + graphapi.Fingerprint(graphapi.Secret(long))}, ""},
		{"short-key", nil, "key 1: 9 bytes, at least 32"},
		{"bad name!:" + long, nil, "key 1: a name is"},
		{"a:" + long[:10] + " " + long, nil, "white space"},
	}
	for _, tt := range tests {
		keys, err := ParseKeys(tt.in, true)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("ParseKeys(%q): %v, want %q", tt.in, err, tt.wantErr)
			}
			if err != nil && strings.Contains(err.Error(), long[:10]) {
				t.Errorf("the error quotes the key: %v", err)
			}
			continue
		}
		if err != nil {
			t.Errorf("ParseKeys(%q): %v", tt.in, err)
			continue
		}
		var names []string
		for _, k := range keys {
			names = append(names, k.Name)
			if !k.ReadOnly {
				t.Errorf("%s not read-only", k.Name)
			}
			if s := fmt.Sprintf("%v %+v", k, k); strings.Contains(s, long) {
				t.Errorf("printing a key shows its secret: %s", s)
			}
		}
		if fmt.Sprint(names) != fmt.Sprint(tt.names) {
			t.Errorf("ParseKeys(%q) names %v, want %v", tt.in, names, tt.names)
		}
	}
}

func TestKeyring(t *testing.T) {
	a := Key{Name: "a", Secret: graphapi.Secret(strings.Repeat("a", 40))}
	b := Key{Name: "b", Secret: graphapi.Secret(strings.Repeat("b", 40)), ReadOnly: true}
	kr, err := newKeyring([]Key{a, b})
	if err != nil {
		t.Fatal(err)
	}
	if k := kr.find(strings.Repeat("b", 40)); k == nil || k.Name != "b" || !k.ReadOnly {
		t.Errorf("find b: %+v", k)
	}
	for _, bad := range []string{"", strings.Repeat("a", 39), strings.Repeat("a", 41), strings.Repeat("A", 40)} {
		if k := kr.find(bad); k != nil {
			t.Errorf("find(%q) = %s", bad, k.Name)
		}
	}
	for _, keys := range [][]Key{nil, {a, {Name: "a", Secret: "other-secret"}}, {a, {Name: "c", Secret: a.Secret}}, {{Name: "x"}}} {
		if _, err := newKeyring(keys); err == nil {
			t.Errorf("newKeyring(%d keys) accepted them", len(keys))
		} else if strings.Contains(err.Error(), string(a.Secret)) {
			t.Errorf("the error quotes a key: %v", err)
		}
	}
}
