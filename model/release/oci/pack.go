// Package oci lays a release out as an OCI artifact in the CNCF ModelPack
// format (model-spec v1) and moves it to and from any OCI registry with
// oras-go. It knows releases (package release) but nothing of builds: the
// commands give it a release's files and manifest.json.
//
// The artifact: an OCI image manifest with artifactType
// application/vnd.cncf.model.manifest.v1+json; a ModelPack config
// (application/vnd.cncf.model.config.v1+json: name, revision, licenses,
// description, and every layer's digest as modelfs.diffIds); one
// uncompressed layer per file of the release, with the file's path in the
// org.cncf.model.filepath annotation and a ModelPack media type chosen from
// its name (weights, weight configs, docs, code); the model card
// (README.md) as a doc layer; and manifest.json itself as a last layer of
// media type application/vnd.cogumi.release.manifest.v1+json, so that a
// pull can check every file against it. The manifest's annotations name the
// release's digest (the BLAKE3 of manifest.json). Everything is a function
// of manifest.json alone (no timestamps), so the same release always makes
// the same OCI manifest digest: that is what makes publishing idempotent.
package oci

import (
	"encoding/json"
	"fmt"
	"path"
	"strings"

	"github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/cogumi/cogumi/model/release"
)

// ModelPack v1 media types and annotations (github.com/modelpack/model-spec,
// specs-go/v1/mediatype.go and annotations.go).
const (
	ArtifactType       = "application/vnd.cncf.model.manifest.v1+json"
	MediaTypeConfig    = "application/vnd.cncf.model.config.v1+json"
	MediaTypeWeight    = "application/vnd.cncf.model.weight.v1.raw"
	MediaTypeWeightCfg = "application/vnd.cncf.model.weight.config.v1.raw"
	MediaTypeDoc       = "application/vnd.cncf.model.doc.v1.raw"
	MediaTypeCode      = "application/vnd.cncf.model.code.v1.raw"
	AnnotationFilepath = "org.cncf.model.filepath"
)

// cogumi's own additions.
const (
	// MediaTypeReleaseManifest is the layer that holds manifest.json.
	MediaTypeReleaseManifest = "application/vnd.cogumi.release.manifest.v1+json"
	// AnnotationDigest names the release's digest on the OCI manifest.
	AnnotationDigest = "dev.cogumi.release.digest"
)

// Artifact is a release laid out for a registry.
type Artifact struct {
	Manifest      []byte             // the OCI manifest's bytes
	Desc          ocispec.Descriptor // the OCI manifest's descriptor
	Config        []byte             // the ModelPack config's bytes
	ConfigDesc    ocispec.Descriptor
	Layers        []ocispec.Descriptor // one per file, manifest.json last
	ReleaseDigest string               // BLAKE3 of manifest.json
}

// Pack lays out the release whose manifest.json is raw (already parsed as
// m). It reads no file: the digests and sizes come from the manifest.
func Pack(m *release.Manifest, raw []byte) (*Artifact, error) {
	a := &Artifact{ReleaseDigest: release.Digest(raw)}
	var diffIDs []digest.Digest
	for _, f := range m.AllFiles() {
		d := digest.NewDigestFromEncoded(digest.SHA256, f.SHA256)
		if err := d.Validate(); err != nil {
			return nil, fmt.Errorf("%s: %w", f.Path, err)
		}
		a.Layers = append(a.Layers, ocispec.Descriptor{MediaType: MediaTypeFor(f.Path), Digest: d, Size: f.Size,
			Annotations: map[string]string{AnnotationFilepath: f.Path}})
		diffIDs = append(diffIDs, d)
	}
	md := digest.FromBytes(raw)
	a.Layers = append(a.Layers, ocispec.Descriptor{MediaType: MediaTypeReleaseManifest, Digest: md, Size: int64(len(raw)),
		Annotations: map[string]string{AnnotationFilepath: release.ManifestName}})
	diffIDs = append(diffIDs, md)

	cfg := modelConfig{Descriptor: modelDescriptor{Name: m.Name, Revision: m.Commit, Description: m.Card.Description},
		ModelFS: modelFS{Type: "layers", DiffIDs: diffIDs}}
	if m.Card.License != "" {
		cfg.Descriptor.Licenses = []string{m.Card.License}
	}
	for _, f := range m.Files {
		if strings.HasSuffix(f.Path, ".gguf") {
			cfg.Config.Format = "gguf"
		}
	}
	var err error
	if a.Config, err = json.Marshal(cfg); err != nil {
		return nil, err
	}
	a.ConfigDesc = ocispec.Descriptor{MediaType: MediaTypeConfig, Digest: digest.FromBytes(a.Config), Size: int64(len(a.Config))}

	ann := map[string]string{AnnotationDigest: a.ReleaseDigest, ocispec.AnnotationTitle: m.Name}
	if m.Commit != "" {
		ann[ocispec.AnnotationRevision] = m.Commit
	}
	om := ocispec.Manifest{Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: ocispec.MediaTypeImageManifest,
		ArtifactType: ArtifactType, Config: a.ConfigDesc, Layers: a.Layers, Annotations: ann}
	if a.Manifest, err = json.Marshal(om); err != nil {
		return nil, err
	}
	a.Desc = ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, ArtifactType: ArtifactType,
		Digest: digest.FromBytes(a.Manifest), Size: int64(len(a.Manifest))}
	return a, nil
}

// MediaTypeFor chooses a file's ModelPack layer media type from its name:
// the model card and text are docs, code is code, tokenizer and model
// configuration files are weight configs, anything else is weights.
func MediaTypeFor(p string) string {
	base := strings.ToLower(path.Base(p))
	switch ext := path.Ext(base); {
	case base == "readme.md" || base == "license" || ext == ".md" || ext == ".txt":
		return MediaTypeDoc
	case ext == ".py" || ext == ".sh":
		return MediaTypeCode
	case ext == ".json" || ext == ".yaml" || ext == ".yml" || ext == ".model" || ext == ".tiktoken" || ext == ".jinja":
		return MediaTypeWeightCfg
	}
	return MediaTypeWeight
}

// modelConfig is ModelPack's config (specs-go/v1/config.go), the fields
// cogumi fills.
type modelConfig struct {
	Descriptor modelDescriptor `json:"descriptor"`
	ModelFS    modelFS         `json:"modelfs"`
	Config     struct {
		Format string `json:"format,omitempty"`
	} `json:"config"`
}

type modelDescriptor struct {
	Name        string   `json:"name,omitempty"`
	Revision    string   `json:"revision,omitempty"`
	Licenses    []string `json:"licenses,omitempty"`
	Description string   `json:"description,omitempty"`
}

type modelFS struct {
	Type    string          `json:"type"`
	DiffIDs []digest.Digest `json:"diffIds"`
}
