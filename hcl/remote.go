package hcl

import (
	"strings"

	hhcl "github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"
)

// RemoteCache is the remote_cache block of cogumi.hcl: a team's shared
// S3-compatible bucket. It never holds credentials: those come from the
// standard AWS sources only.
type RemoteCache struct {
	URL      string // s3://bucket/prefix
	Endpoint string // optional: any S3-compatible server; http:// means no TLS
	Region   string
	Upload   bool // false: read-only
}

// secretWords name attributes that would hold credentials.
func isSecretName(name string) bool {
	n := strings.ToLower(name)
	for _, w := range []string{"key", "secret", "token", "password", "credential"} {
		if strings.Contains(n, w) {
			return true
		}
	}
	return false
}

// decodeRemoteCacheBlock reads remote_cache { url, endpoint, region, upload }.
func decodeRemoteCacheBlock(ws *Workspace, b *hclsyntax.Block, ctx *hhcl.EvalContext) Diagnostics {
	var ds Diagnostics
	for name, a := range b.Body.Attributes {
		if isSecretName(name) {
			ds = append(ds, diagAt(a.NameRange, "attribute %q: cogumi.hcl never holds credentials; set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or use ~/.aws/credentials with AWS_PROFILE, or an instance role", name))
			delete(b.Body.Attributes, name)
		}
	}
	ds = append(ds, checkAttrs(b.Body, "the remote_cache block", "url", "endpoint", "region", "upload")...)
	rc := &RemoteCache{Upload: true}
	str := func(name string, dst *string) {
		if a, ok := b.Body.Attributes[name]; ok {
			v, ok, eds := evalString(a, ctx)
			ds = append(ds, eds...)
			if ok {
				*dst = v
			}
		}
	}
	str("url", &rc.URL)
	str("endpoint", &rc.Endpoint)
	str("region", &rc.Region)
	if a, ok := b.Body.Attributes["upload"]; ok {
		v, eds := evalExpr(a.Expr, ctx)
		ds = append(ds, eds...)
		if len(eds) == 0 {
			if v.IsNull() || v.Type() != cty.Bool {
				ds = append(ds, diagAt(a.Expr.Range(), "attribute \"upload\": expected bool, got %s", typeName(v)))
			} else {
				rc.Upload = v.True()
			}
		}
	}
	if _, ok := b.Body.Attributes["url"]; !ok {
		ds = append(ds, diagAt(b.TypeRange, "the remote_cache block needs url = \"s3://bucket/prefix\""))
	} else if rc.URL != "" && !strings.HasPrefix(rc.URL, "s3://") {
		ds = append(ds, diagAt(b.Body.Attributes["url"].Expr.Range(), "remote cache url %q: write s3://bucket/prefix", rc.URL))
	}
	if len(ds) == 0 {
		ws.RemoteCache = rc
	}
	return ds
}
