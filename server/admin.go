package server

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"time"

	"github.com/openmpns/openmpns/server/auth"
)

// AdminSocketFile is the name of the admin socket inside the data
// directory, where a running server takes `openmpns service` commands.
const AdminSocketFile = "admin.sock"

// maxAdminBody bounds an admin request's body (a PEM public key).
const maxAdminBody = 64 << 10

// AdminService is a registered sender as the admin API lists it (no
// secret, not even its hash).
type AdminService struct {
	Service  string   `json:"service"`
	ClientID string   `json:"client_id"`
	Keys     []string `json:"keys"`
	Created  string   `json:"created"`
}

// ListServices lists the registry's services as the admin API shows them.
func ListServices(reg *auth.Registry) []AdminService {
	list := reg.List()
	rows := make([]AdminService, 0, len(list))
	for _, sv := range list {
		row := AdminService{Service: sv.Name, ClientID: sv.ClientID, Keys: []string{}, Created: sv.Created.UTC().Format(time.RFC3339)}
		for _, k := range sv.Keys {
			row.Keys = append(row.Keys, k.ID)
		}
		rows = append(rows, row)
	}
	return rows
}

// adminHandler is the admin API of a running server: the service registry
// without a restart. It is served on a Unix socket only the server's user
// may open (AdminSocketFile), never on the public listener.
func (s *Server) adminHandler() http.Handler {
	mux := http.NewServeMux()
	reg := s.registry
	mux.HandleFunc("GET /v1/services", func(w http.ResponseWriter, r *http.Request) {
		adminJSON(w, http.StatusOK, ListServices(reg))
	})
	mux.HandleFunc("POST /v1/services", func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			Name string `json:"name"`
		}
		if err := json.NewDecoder(io.LimitReader(r.Body, maxAdminBody)).Decode(&req); err != nil {
			adminError(w, fmt.Errorf("want JSON {\"name\": ...}: %w", err))
			return
		}
		c, err := reg.Add(req.Name)
		if err != nil {
			adminError(w, err)
			return
		}
		s.log.Info("admin: service added", "service", req.Name)
		adminJSON(w, http.StatusCreated, c)
	})
	mux.HandleFunc("DELETE /v1/services/{name}", func(w http.ResponseWriter, r *http.Request) {
		if err := reg.Remove(r.PathValue("name")); err != nil {
			adminError(w, err)
			return
		}
		s.log.Info("admin: service removed", "service", r.PathValue("name"))
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("POST /v1/services/{name}/rotate-secret", func(w http.ResponseWriter, r *http.Request) {
		c, err := reg.RotateSecret(r.PathValue("name"))
		if err != nil {
			adminError(w, err)
			return
		}
		s.log.Info("admin: service secret rotated", "service", r.PathValue("name"))
		adminJSON(w, http.StatusOK, c)
	})
	mux.HandleFunc("POST /v1/services/{name}/keys", func(w http.ResponseWriter, r *http.Request) {
		pemBytes, err := io.ReadAll(io.LimitReader(r.Body, maxAdminBody))
		if err != nil {
			adminError(w, err)
			return
		}
		kid, err := reg.AddKey(r.PathValue("name"), pemBytes)
		if err != nil {
			adminError(w, err)
			return
		}
		s.log.Info("admin: service key added", "service", r.PathValue("name"), "kid", kid)
		adminJSON(w, http.StatusCreated, map[string]string{"service": r.PathValue("name"), "kid": kid})
	})
	mux.HandleFunc("DELETE /v1/services/{name}/keys/{kid}", func(w http.ResponseWriter, r *http.Request) {
		if err := reg.RemoveKey(r.PathValue("name"), r.PathValue("kid")); err != nil {
			adminError(w, err)
			return
		}
		s.log.Info("admin: service key removed", "service", r.PathValue("name"), "kid", r.PathValue("kid"))
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("DELETE /v1/devices/{id}", func(w http.ResponseWriter, r *http.Request) {
		id := r.PathValue("id")
		n, err := s.RevokeDevice(r.Context(), id)
		if err != nil {
			adminError(w, err)
			return
		}
		s.log.Info("admin: device revoked", "device", id, "channels_deleted", n)
		adminJSON(w, http.StatusOK, RevokedDevice{Device: id, Channels: n})
	})
	mux.HandleFunc("POST /v1/server-key/rotate", func(w http.ResponseWriter, r *http.Request) {
		k, err := s.RotateKey(r.Context())
		if err != nil {
			adminError(w, err)
			return
		}
		adminJSON(w, http.StatusOK, k)
	})
	return mux
}

// RevokedDevice is the admin API's answer to a revocation.
type RevokedDevice struct {
	Device string `json:"device"`
	// Channels is how many channels were deleted with it.
	Channels int `json:"channels_deleted"`
}

func adminJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

// adminError answers err with the status its kind calls for.
func adminError(w http.ResponseWriter, err error) {
	status := http.StatusInternalServerError
	switch {
	case errors.Is(err, auth.ErrNoSuchService), errors.Is(err, auth.ErrNoSuchKey), errors.Is(err, ErrNoSuchDevice):
		status = http.StatusNotFound
	case errors.Is(err, auth.ErrServiceExists), errors.Is(err, auth.ErrKeyExists):
		status = http.StatusConflict
	case errors.Is(err, auth.ErrInvalidName), errors.Is(err, auth.ErrInvalidKey):
		status = http.StatusBadRequest
	}
	var je *json.SyntaxError
	if errors.As(err, &je) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
		status = http.StatusBadRequest
	}
	adminJSON(w, status, map[string]string{"error": err.Error()})
}

// serveAdmin listens on the admin socket (created 0600) and serves the
// admin API until the server shuts down.
func (s *Server) serveAdmin(path string) error {
	if runtime.GOOS == "windows" {
		// A file's mode there only sets its read-only attribute: it would
		// not keep other local users off the socket.
		return errors.New("server: no admin socket on Windows: its file mode would not keep other local users out")
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("server: admin socket: %w", err)
	}
	// A socket left by a server that died is in the way; a live server's
	// is not removed (the data file's lock already refused a second server
	// on this directory, so a live one here is a cluster node's).
	if c, err := net.DialTimeout("unix", path, time.Second); err == nil {
		c.Close()
		return fmt.Errorf("server: admin socket %s: another server answers on it; give this one --admin elsewhere", path)
	}
	// Only a socket is removed: a mistaken --admin never unlinks a file.
	if fi, err := os.Lstat(path); err == nil {
		if fi.Mode().Type() != os.ModeSocket {
			return fmt.Errorf("server: admin socket %s: a file that is not a socket is there; give --admin another path", path)
		}
		os.Remove(path)
	}
	ln, err := net.Listen("unix", path)
	if err != nil {
		return fmt.Errorf("server: admin socket: %w", err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		ln.Close()
		return fmt.Errorf("server: admin socket: %w", err)
	}
	s.admin = &http.Server{Handler: s.adminHandler(), ReadHeaderTimeout: 10 * time.Second,
		ErrorLog: s.http.ErrorLog}
	go s.admin.Serve(peerListener{ln})
	s.adminPath = path
	return nil
}

// peerListener accepts only connections from this server's user (see
// peerAllowed).
type peerListener struct{ net.Listener }

func (l peerListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil || peerAllowed(c) {
			return c, err
		}
		c.Close()
	}
}
