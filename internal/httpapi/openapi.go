package httpapi

import (
	_ "embed"
	"net/http"
)

// Document is the OpenAPI 3.1 description of the API, served at
// /openapi.json. api/openapi.json in the repository is a copy kept equal
// by a test.
//
//go:embed openapi.json
var Document []byte

func serveDocument(w http.ResponseWriter, _ *http.Request) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(Document)
}
