package strictjson

import (
	"encoding/json"
	"reflect"
	"testing"
)

type inner struct {
	Name string `json:"name"`
}

type Base struct {
	ID string `json:"id"`
}

type outer struct {
	Base
	Inner   *inner           `json:"inner"`
	List    []inner          `json:"list"`
	ByKey   map[string]inner `json:"by_key"`
	Raw     json.RawMessage  `json:"raw"`
	Skipped string           `json:"-"`
	Untag   int
}

func TestDecode(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want []Problem
	}{
		{"clean", `{"id":"1","inner":{"name":"a"},"list":[{"name":"b"}],"by_key":{"k":{"name":"c"}},"raw":{"any":1},"Untag":2}`, nil},
		{"unknown everywhere, sorted per object", `{"zz":1,"inner":{"nam":"a"},"list":[{},{"x":1}],"by_key":{"k":{"y":2}},"aa":0}`, []Problem{
			{"root.aa", "unknown field"},
			{"root.by_key.k.y", "unknown field"},
			{"root.inner.nam", "unknown field"},
			{"root.list[1].x", "unknown field"},
			{"root.zz", "unknown field"},
		}},
		{"case differs", `{"ID":"1"}`, []Problem{{"root.ID", `unknown field (did you mean "id"?)`}}},
		{"json:\"-\" is not a key", `{"Skipped":"x"}`, []Problem{{"root.Skipped", "unknown field"}}},
		{"type mismatch", `{"inner":{"name":5}}`, []Problem{{"root.inner.name", "expected string, got number"}}},
		{"syntax", `{"id":`, []Problem{{"root", "invalid JSON: unexpected end of input"}}},
		{"trailing value", `{} 1`, []Problem{{"root", "invalid JSON: more than one value"}}},
		{"stray closing brace", `{"id":"1"} }`, []Problem{{"root", "invalid JSON: more than one value"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var v outer
			got := Decode([]byte(tt.in), "root", &v)
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Decode = %v\nwant     %v", got, tt.want)
			}
		})
	}
}

func TestDecodeFillsValue(t *testing.T) {
	var v outer
	if p := Decode([]byte(`{"id":"7","inner":{"name":"n"},"raw":[1, 2]}`), "r", &v); p != nil {
		t.Fatal(p)
	}
	if v.ID != "7" || v.Inner == nil || v.Inner.Name != "n" || string(v.Raw) != "[1, 2]" {
		t.Errorf("decoded %+v", v)
	}
}
