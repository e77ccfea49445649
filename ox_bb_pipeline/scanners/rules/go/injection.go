// Semgrep test cases for injection.yaml: `ruleid:` marks a line that must match, `ok:` one that must not.
package main

import (
	"fmt"
	"html"
	"net/http"
	"os"
	"path/filepath"

	"github.com/gin-gonic/gin"
)

func download(w http.ResponseWriter, r *http.Request) {
	name := r.URL.Query().Get("name")
	// ruleid: ox.go.path-traversal
	os.ReadFile(filepath.Join("/srv/files", name))
	// ok: ox.go.path-traversal
	os.ReadFile(filepath.Join("/srv/files", filepath.Base(name)))
	// ruleid: ox.go.xss
	fmt.Fprintf(w, "<p>%s</p>", name)
	// ok: ox.go.xss
	fmt.Fprintf(w, "<p>%s</p>", html.EscapeString(name))
	// ok: ox.go.xss
	w.Write([]byte("done"))
}

func next(w http.ResponseWriter, r *http.Request) {
	// ruleid: ox.go.open-redirect
	http.Redirect(w, r, r.FormValue("next"), http.StatusFound)
	// ok: ox.go.open-redirect
	http.Redirect(w, r, "/home", http.StatusFound)
}

func preview(c *gin.Context) {
	target := c.Query("url")
	// ruleid: ox.go.ssrf
	resp, err := http.Get(target)
	// ok: ox.go.ssrf
	status, _ := http.Get("https://api.example.com/status")
	if err == nil {
		resp.Body.Close()
		status.Body.Close()
	}
}
