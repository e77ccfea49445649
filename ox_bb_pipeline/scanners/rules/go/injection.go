// Semgrep test cases for injection.yaml: `ruleid:` marks a line that must match, `ok:` one that must not.
package main

import (
	"database/sql"
	"encoding/json"
	"fmt"
	"html"
	"html/template"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"

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

type Order struct {
	Host string `json:"host"`
}

func ping(c *gin.Context) {
	var order Order
	if err := c.ShouldBindJSON(&order); err != nil {
		return
	}
	// ruleid: ox.go.command-injection
	exec.Command("sh", "-c", "ping -c 1 "+order.Host).Run()
	// ruleid: ox.go.command-injection
	exec.Command("git", "clone", c.Param("repo")).Run()
	// ok: ox.go.command-injection
	exec.Command("uptime").Run()
}

func lookup(w http.ResponseWriter, r *http.Request, db *sql.DB) {
	var body struct{ Name string }
	json.NewDecoder(r.Body).Decode(&body)
	query := fmt.Sprintf("SELECT id FROM users WHERE name = '%s'", body.Name)
	// ruleid: ox.go.sql-taint
	db.Query(query)
	id, _ := strconv.Atoi(r.URL.Query().Get("id"))
	// ok: ox.go.sql-taint
	db.Query(fmt.Sprintf("SELECT name FROM users WHERE id = %d", id))
	// ok: ox.go.sql-taint
	db.QueryRow("SELECT name FROM users WHERE name = ?", body.Name)
	stmt, _ := db.Prepare("SELECT id FROM users WHERE name = ?")
	// ok: ox.go.sql-taint
	stmt.QueryRow(body.Name)
	// ruleid: ox.go.xss
	greeting := template.HTML("<b>" + r.FormValue("name") + "</b>")
	_ = greeting
}

// UnsafeProfile builds SQL from a parameter its caller takes from the request.
func UnsafeProfile(db *sql.DB, uid string) error {
	profileSQL := fmt.Sprintf("SELECT name FROM profile WHERE user_id = %s", uid)
	// ruleid: ox.go.sql-taint
	_, err := db.Query(profileSQL)
	return err
}

func openFile(c *gin.Context) {
	// ruleid: ox.go.path-traversal
	f, _ := os.Open(filepath.Join("/srv/uploads", c.Query("file")))
	f.Close()
}

func checkUser(user string, pwd string) bool {
	query := fmt.Sprintf("SELECT * FROM users WHERE username = '%s' AND password = '%s'", user, pwd)
	// ruleid: ox.go.sql-taint
	rows := dbQuery(query)
	// ok: ox.go.sql-taint
	other := dbQuery("SELECT count(*) FROM users")
	defer other.Close()
	defer rows.Close()
	return rows.Next()
}
