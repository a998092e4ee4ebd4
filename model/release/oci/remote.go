package oci

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"strings"

	"oras.land/oras-go/v2/registry"
	"oras.land/oras-go/v2/registry/remote"
	"oras.land/oras-go/v2/registry/remote/auth"
	"oras.land/oras-go/v2/registry/remote/credentials"
	"oras.land/oras-go/v2/registry/remote/errcode"
	"oras.land/oras-go/v2/registry/remote/retry"
)

// Options say how to reach a registry.
type Options struct {
	// AuthEnv names an environment variable holding "user:password" or a
	// bearer token; empty means the Docker config (~/.docker/config.json,
	// or $DOCKER_CONFIG/config.json, with its credential helpers).
	AuthEnv string
	// PlainHTTP uses http://; it is on by itself for 127.0.0.1, ::1 and
	// localhost.
	PlainHTTP bool
	// Transport, when set, carries the requests (tests inject faults here).
	Transport http.RoundTripper
}

// Repo is a repository of a registry, with where its credentials came from
// (for messages; never the credentials themselves).
type Repo struct {
	*remote.Repository
	Ref      registry.Reference
	credFrom string
}

// Open parses ref (REGISTRY/REPO[:TAG|@DIGEST]) and returns its repository.
func Open(ref string, o Options) (*Repo, error) {
	r, err := registry.ParseReference(ref)
	if err != nil {
		return nil, fmt.Errorf("%q: want REGISTRY/REPOSITORY:TAG (%w)", ref, err)
	}
	repo, err := remote.NewRepository(r.Registry + "/" + r.Repository)
	if err != nil {
		return nil, err
	}
	repo.PlainHTTP = o.PlainHTTP || isLoopback(r.Host())
	client := &auth.Client{Client: retry.DefaultClient, Cache: auth.NewCache(), Header: http.Header{"User-Agent": {"cogumi"}}}
	if o.Transport != nil {
		client.Client = &http.Client{Transport: o.Transport}
	}
	from := "a request without credentials (none for " + r.Registry + " in the Docker config)"
	if o.AuthEnv != "" {
		v := os.Getenv(o.AuthEnv)
		if v == "" {
			return nil, fmt.Errorf("--registry-auth-env %s: $%s is empty or unset", o.AuthEnv, o.AuthEnv)
		}
		var c auth.Credential
		if user, pass, ok := strings.Cut(v, ":"); ok {
			c = auth.Credential{Username: user, Password: pass}
		} else {
			c = auth.Credential{AccessToken: v}
		}
		client.Credential = auth.StaticCredential(r.Registry, c)
		from = "the credentials in $" + o.AuthEnv
	} else if store, err := credentials.NewStoreFromDocker(credentials.StoreOptions{}); err == nil {
		if c, err := store.Get(context.Background(), r.Registry); err == nil && c != auth.EmptyCredential {
			from = "the credentials for " + r.Registry + " in the Docker config"
		}
		client.Credential = credentials.Credential(store)
	} else {
		return nil, fmt.Errorf("reading the Docker config: %w", err)
	}
	repo.Client = client
	return &Repo{Repository: repo, Ref: r, credFrom: from}, nil
}

func isLoopback(host string) bool {
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(strings.Trim(host, "[]"))
	return ip != nil && ip.IsLoopback()
}

// ErrAuth is wrapped by errors a registry gave for missing or refused
// credentials.
var ErrAuth = errors.New("refused")

// explain turns a registry's refusal into one clear sentence; other errors
// pass unchanged. Credentials never appear in it: oras's errors name the
// URL and the registry's error codes only.
func (r *Repo) explain(err error) error {
	if errors.Is(err, auth.ErrBasicCredentialNotFound) {
		return fmt.Errorf("%s %w %s (401 Unauthorized): log in with docker login %s, or pass --registry-auth-env NAME",
			r.Ref.Registry, ErrAuth, r.credFrom, r.Ref.Registry)
	}
	var resp *errcode.ErrorResponse
	if !errors.As(err, &resp) {
		return err
	}
	switch resp.StatusCode {
	case http.StatusUnauthorized:
		return fmt.Errorf("%s %w %s (401 Unauthorized): check them, log in with docker login %s, or pass --registry-auth-env NAME",
			r.Ref.Registry, ErrAuth, r.credFrom, r.Ref.Registry)
	case http.StatusForbidden:
		return fmt.Errorf("%s %w %s (403 Forbidden): they may not write %s", r.Ref.Registry, ErrAuth, r.credFrom, r.Ref.Repository)
	}
	return err
}
