// Semgrep test cases for go.yaml: `ruleid:` marks a line that must match, `ok:` one that must not.
package cases

import (
	"context"
	"crypto/des"
	"crypto/md5"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/tls"
	"database/sql"
	"fmt"
	"math/rand"
	"net/http"
	"os/exec"
	"strconv"
)

func RunCommand(ctx context.Context, command string) ([]byte, error) {
	// ruleid: ox.go.os-command
	cmd := exec.CommandContext(ctx, "sh", "-c", command)
	return cmd.CombinedOutput()
}

func Lookup(host string) ([]byte, error) {
	// ruleid: ox.go.os-command
	exec.Command("/bin/bash", "-c", "nslookup "+host).Run()
	// ok: ox.go.os-command
	exec.Command("sh", "-c", "uptime").Run()
	// ok: ox.go.os-command
	return exec.Command("nslookup", host).Output()
}

func Get(db *sql.DB, ctx context.Context, id string) error {
	// ruleid: ox.go.sql-string
	row := db.QueryRow("SELECT id, kind FROM jobs WHERE id = '" + id + "'")
	// ruleid: ox.go.sql-string
	db.ExecContext(ctx, fmt.Sprintf("DELETE FROM jobs WHERE id = '%s'", id))
	// ok: ox.go.sql-string
	db.QueryRow("SELECT id, kind FROM jobs WHERE id = $1", id)
	return row.Err()
}

func APIKeyDigest(key string) []byte {
	// ruleid: ox.go.weak-password-hash, ox.go.weak-hash
	sum := md5.Sum([]byte(key))
	return sum[:]
}

func ETag(body []byte) []byte {
	// ruleid: ox.go.weak-hash
	weak := sha1.Sum(body)
	// ok: ox.go.weak-hash
	strong := sha256.Sum256(weak[:])
	return strong[:]
}

func Cipher(key []byte) {
	// ruleid: ox.go.weak-cipher
	des.NewCipher(key)
}

func strongCipher(key []byte) {
	// ok: ox.go.weak-cipher
	aes.NewCipher(key)
}

func hashPasswordProperly(password []byte) ([]byte, error) {
	// ok: ox.go.weak-password-hash
	return bcrypt.GenerateFromPassword(password, 12)
}

func Client() *http.Client {
	return &http.Client{
		Transport: &http.Transport{
			// ruleid: ox.go.tls-skip-verify
			TLSClientConfig: &tls.Config{InsecureSkipVerify: true},
		},
	}
}

func StrictClient() *http.Client {
	// ok: ox.go.tls-skip-verify
	return &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{MinVersion: tls.VersionTLS12}}}
}

// ruleid: ox.go.hardcoded-credential
const stripeSecretKey = "sk_live_000000000000000000000000"

// ok: ox.go.hardcoded-credential
const tokenURL = "https://auth.example.com/token"

func Dsn() string {
	// ruleid: ox.go.hardcoded-credential
	dbPassword := "X85fve2F97pL4!mvmmpO"
	return dbPassword
}

func NewSessionToken() string {
	// ruleid: ox.go.weak-random
	token := fmt.Sprintf("%x", rand.Int63())
	// ok: ox.go.weak-random
	delay := rand.Intn(100)
	_ = delay
	// ruleid: ox.go.weak-random
	cookie := http.Cookie{Name: "session", Value: strconv.Itoa(rand.Int())}
	_ = cookie
	return token
}
