package metrics

import (
	"bufio"
	"fmt"
	"html"
	"image"
	"image/color"
	"image/png"
	"io"
	"math"
	"sort"
	"strconv"

	"golang.org/x/image/font"
	"golang.org/x/image/font/gofont/goregular"
	"golang.org/x/image/font/opentype"
	"golang.org/x/image/math/fixed"
)

// A Chart is one plot: a panel per metric (metrics differ in scale), each
// holding a series per target. Bars compare targets; lines follow targets
// across builds.
type Chart struct {
	Title  string
	Lines  bool // false: bars, one per series, from each series' first point
	XLabel string
	Panels []Panel
}

// Panel is one metric.
type Panel struct {
	Title  string
	Series []Series
}

// Series is one target's values.
type Series struct {
	Name   string
	Points []Point
}

// Point is one value; X is the build number for lines.
type Point struct {
	X, Y float64
}

// BarChart compares the current metrics of several evaluations: one panel
// per metric name, one bar per evaluation that has it.
func BarChart(snaps []Snapshot) Chart {
	c := Chart{Title: "metrics by target"}
	byMetric := make(map[string][]Series)
	var names []string
	for _, s := range snaps {
		for _, n := range s.File.Names() {
			v, _ := s.File.Value(n)
			if _, ok := byMetric[n]; !ok {
				names = append(names, n)
			}
			byMetric[n] = append(byMetric[n], Series{Name: s.Label, Points: []Point{{Y: v}}})
		}
	}
	sortMetricNames(names)
	for _, n := range names {
		c.Panels = append(c.Panels, Panel{Title: n, Series: byMetric[n]})
	}
	return c
}

// HistoryChart follows each evaluation's metrics across the builds that
// changed them: one panel per metric name, one line per evaluation.
func HistoryChart(h *History, labels []string) Chart {
	c := Chart{Title: "metrics across builds", Lines: true, XLabel: "build"}
	byMetric := make(map[string][]Series)
	var names []string
	for _, l := range labels {
		es := h.Targets[l]
		series := make(map[string]*Series)
		var order []string
		for _, e := range es {
			for _, n := range sortedKeys(e.Metrics) {
				s, ok := series[n]
				if !ok {
					s = &Series{Name: l}
					series[n] = s
					order = append(order, n)
				}
				s.Points = append(s.Points, Point{X: float64(e.Build), Y: e.Metrics[n]})
			}
		}
		for _, n := range order {
			if _, ok := byMetric[n]; !ok {
				names = append(names, n)
			}
			byMetric[n] = append(byMetric[n], *series[n])
		}
	}
	sortMetricNames(names)
	for _, n := range names {
		c.Panels = append(c.Panels, Panel{Title: n, Series: byMetric[n]})
	}
	return c
}

// sortMetricNames puts whole-evaluation metrics before group metrics.
func sortMetricNames(names []string) {
	sort.Slice(names, func(i, j int) bool {
		gi, gj := hasDot(names[i]), hasDot(names[j])
		if gi != gj {
			return !gi
		}
		return names[i] < names[j]
	})
}

func hasDot(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] == '.' {
			return true
		}
	}
	return false
}

// The drawing is laid out once as shapes, then written as SVG or rasterised
// to PNG, so both files show the same plot.
type shape struct {
	kind   byte // 'r' rectangle, 'l' polyline, 'c' circle, 't' text
	x, y   float64
	w, h   float64 // rectangle size; circle radius in w
	pts    []Point // polyline
	col    color.RGBA
	stroke float64
	text   string
	anchor string // text: start, middle, end
	size   float64
}

const (
	plotWidth   = 760.0
	panelHeight = 200.0
	marginLeft  = 70.0
	marginRight = 20.0
	legendLine  = 18.0
)

var (
	black = color.RGBA{0x22, 0x22, 0x22, 0xff}
	grey  = color.RGBA{0xcc, 0xcc, 0xcc, 0xff}
	white = color.RGBA{0xff, 0xff, 0xff, 0xff}
)

// seriesColor is a colour-blind-friendly palette (Okabe-Ito), cycled.
func seriesColor(i int) color.RGBA {
	p := []color.RGBA{
		{0x00, 0x72, 0xb2, 0xff}, {0xe6, 0x9f, 0x00, 0xff}, {0x00, 0x9e, 0x73, 0xff},
		{0xd5, 0x5e, 0x00, 0xff}, {0xcc, 0x79, 0xa7, 0xff}, {0x56, 0xb4, 0xe9, 0xff},
		{0xf0, 0xe4, 0x42, 0xff}, {0x00, 0x00, 0x00, 0xff},
	}
	return p[i%len(p)]
}

// layout turns a chart into shapes and returns the canvas size.
func layout(c Chart) ([]shape, float64, float64) {
	// One colour per series name across every panel.
	colorOf := make(map[string]color.RGBA)
	var legend []string
	for _, p := range c.Panels {
		for _, s := range p.Series {
			if _, ok := colorOf[s.Name]; !ok {
				colorOf[s.Name] = seriesColor(len(legend))
				legend = append(legend, s.Name)
			}
		}
	}
	var out []shape
	y := 10.0
	out = append(out, shape{kind: 't', x: plotWidth / 2, y: y + 16, text: c.Title, anchor: "middle", size: 16, col: black})
	y += 30
	for i, name := range legend {
		out = append(out,
			shape{kind: 'r', x: marginLeft, y: y + float64(i)*legendLine, w: 12, h: 12, col: colorOf[name]},
			shape{kind: 't', x: marginLeft + 18, y: y + float64(i)*legendLine + 11, text: name, anchor: "start", size: 12, col: black})
	}
	y += float64(len(legend))*legendLine + 10
	if len(c.Panels) == 0 {
		out = append(out, shape{kind: 't', x: plotWidth / 2, y: y + 20, text: "no metrics", anchor: "middle", size: 12, col: black})
		y += 40
	}
	// Lines share one x range, so a build sits at the same place in every panel.
	xr := [2]float64{math.Inf(1), math.Inf(-1)}
	for _, p := range c.Panels {
		for _, s := range p.Series {
			for _, pt := range s.Points {
				xr[0], xr[1] = math.Min(xr[0], pt.X), math.Max(xr[1], pt.X)
			}
		}
	}
	for _, p := range c.Panels {
		out = append(out, panelShapes(c, p, y, colorOf, xr)...)
		y += panelHeight + 20
	}
	return out, plotWidth, y
}

// panelShapes draws one panel with its top at top.
// xr is the x range of every panel (lines).
func panelShapes(c Chart, p Panel, top float64, colorOf map[string]color.RGBA, xr [2]float64) []shape {
	var out []shape
	x0, x1 := marginLeft, plotWidth-marginRight
	y0, y1 := top+22, top+panelHeight-24 // plot area, y1 is the bottom
	out = append(out, shape{kind: 't', x: x0, y: top + 14, text: p.Title, anchor: "start", size: 13, col: black})
	lo, hi := math.Inf(1), math.Inf(-1)
	xlo, xhi := xr[0], xr[1]
	for _, s := range p.Series {
		for _, pt := range s.Points {
			lo, hi = math.Min(lo, pt.Y), math.Max(hi, pt.Y)
		}
	}
	if math.IsInf(lo, 1) {
		return out
	}
	if !c.Lines {
		lo, hi = math.Min(lo, 0), math.Max(hi, 0) // bars start at zero
	}
	ticks := niceTicks(lo, hi, 5)
	lo, hi = math.Min(lo, ticks[0]), math.Max(hi, ticks[len(ticks)-1])
	if hi == lo {
		hi = lo + 1
	}
	yOf := func(v float64) float64 { return y1 - (v-lo)/(hi-lo)*(y1-y0) }
	for _, t := range ticks {
		ty := yOf(t)
		out = append(out,
			shape{kind: 'l', pts: []Point{{x0, ty}, {x1, ty}}, col: grey, stroke: 1},
			shape{kind: 't', x: x0 - 6, y: ty + 4, text: strconv.FormatFloat(t, 'g', 6, 64), anchor: "end", size: 11, col: black})
	}
	out = append(out, shape{kind: 'l', pts: []Point{{x0, y0}, {x0, y1}, {x1, y1}}, col: black, stroke: 1})
	if !c.Lines {
		n := float64(len(p.Series))
		slot := (x1 - x0) / n
		w := math.Min(slot*0.7, 80)
		for i, s := range p.Series {
			v := s.Points[0].Y
			bx := x0 + slot*float64(i) + (slot-w)/2
			ya, yb := yOf(math.Max(v, 0)), yOf(math.Min(v, 0))
			out = append(out,
				shape{kind: 'r', x: bx, y: ya, w: w, h: math.Max(yb-ya, 1), col: colorOf[s.Name]},
				shape{kind: 't', x: bx + w/2, y: ya - 4, text: FormatValue(v), anchor: "middle", size: 11, col: black})
		}
		return out
	}
	if xhi == xlo {
		xlo, xhi = xlo-1, xhi+1
	}
	xOf := func(v float64) float64 { return x0 + 10 + (v-xlo)/(xhi-xlo)*(x1-x0-20) }
	// Label the builds that have values; with many, round numbers.
	seen := make(map[float64]bool)
	var xticks []float64
	for _, s := range p.Series {
		for _, pt := range s.Points {
			if !seen[pt.X] {
				seen[pt.X] = true
				xticks = append(xticks, pt.X)
			}
		}
	}
	if len(xticks) > 12 {
		xticks = niceTicks(xlo, xhi, 8)
	}
	for _, t := range xticks {
		if t < xlo || t > xhi || t != math.Trunc(t) {
			continue // builds are whole numbers
		}
		out = append(out, shape{kind: 't', x: xOf(t), y: y1 + 14, text: strconv.FormatFloat(t, 'f', 0, 64), anchor: "middle", size: 11, col: black})
	}
	if c.XLabel != "" {
		// Below the build numbers, so that it never covers the last one.
		out = append(out, shape{kind: 't', x: (x0 + x1) / 2, y: y1 + 28, text: c.XLabel, anchor: "middle", size: 11, col: black})
	}
	for _, s := range p.Series {
		pts := make([]Point, len(s.Points))
		for i, pt := range s.Points {
			pts[i] = Point{xOf(pt.X), yOf(pt.Y)}
		}
		if len(pts) > 1 {
			out = append(out, shape{kind: 'l', pts: pts, col: colorOf[s.Name], stroke: 2})
		}
		for _, pt := range pts {
			out = append(out, shape{kind: 'c', x: pt.X, y: pt.Y, w: 3.5, col: colorOf[s.Name]})
		}
	}
	return out
}

// niceTicks returns about n round values covering [lo, hi].
func niceTicks(lo, hi float64, n int) []float64 {
	if hi < lo {
		lo, hi = hi, lo
	}
	if hi == lo {
		d := math.Max(math.Abs(lo)*0.1, 1)
		lo, hi = lo-d, hi+d
	}
	raw := (hi - lo) / float64(n)
	mag := math.Pow(10, math.Floor(math.Log10(raw)))
	step := mag
	for _, m := range []float64{1, 2, 2.5, 5, 10} {
		if m*mag >= raw {
			step = m * mag
			break
		}
	}
	var out []float64
	for v := math.Floor(lo/step) * step; v <= hi+step*1e-9; v += step {
		out = append(out, math.Round(v/step)*step)
	}
	if out[len(out)-1] < hi {
		out = append(out, out[len(out)-1]+step)
	}
	return out
}

// WriteSVG draws the chart as SVG 1.1.
func WriteSVG(w io.Writer, c Chart) error {
	shapes, width, height := layout(c)
	b := bufio.NewWriter(w)
	fmt.Fprintf(b, `<?xml version="1.0" encoding="UTF-8"?>`+"\n")
	fmt.Fprintf(b, `<svg xmlns="http://www.w3.org/2000/svg" version="1.1" width="%.0f" height="%.0f" viewBox="0 0 %.0f %.0f" font-family="sans-serif">`+"\n", width, height, width, height)
	fmt.Fprintf(b, `<title>%s</title>`+"\n", html.EscapeString(c.Title))
	fmt.Fprintf(b, `<rect x="0" y="0" width="%.0f" height="%.0f" fill="#ffffff"/>`+"\n", width, height)
	for _, s := range shapes {
		switch s.kind {
		case 'r':
			fmt.Fprintf(b, `<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="%s"/>`+"\n", s.x, s.y, s.w, s.h, hexColor(s.col))
		case 'c':
			fmt.Fprintf(b, `<circle cx="%.1f" cy="%.1f" r="%.1f" fill="%s"/>`+"\n", s.x, s.y, s.w, hexColor(s.col))
		case 'l':
			fmt.Fprintf(b, `<polyline fill="none" stroke="%s" stroke-width="%.1f" points="`, hexColor(s.col), s.stroke)
			for i, p := range s.pts {
				if i > 0 {
					b.WriteByte(' ')
				}
				fmt.Fprintf(b, "%.1f,%.1f", p.X, p.Y)
			}
			b.WriteString(`"/>` + "\n")
		case 't':
			fmt.Fprintf(b, `<text x="%.1f" y="%.1f" font-size="%.0f" text-anchor="%s" fill="%s">%s</text>`+"\n", s.x, s.y, s.size, s.anchor, hexColor(s.col), html.EscapeString(s.text))
		}
	}
	b.WriteString("</svg>\n")
	return b.Flush()
}

func hexColor(c color.RGBA) string { return fmt.Sprintf("#%02x%02x%02x", c.R, c.G, c.B) }

// WritePNG rasterises the chart, text included: the labels are drawn in
// the Go font (golang.org/x/image/font/gofont, compiled in), at the sizes
// the SVG asks for.
func WritePNG(w io.Writer, c Chart) error {
	shapes, width, height := layout(c)
	img := image.NewRGBA(image.Rect(0, 0, int(math.Ceil(width)), int(math.Ceil(height))))
	fill(img, img.Bounds(), white)
	faces, err := newFaces()
	if err != nil {
		return err
	}
	defer faces.close()
	for _, s := range shapes {
		switch s.kind {
		case 'r':
			fill(img, image.Rect(int(math.Round(s.x)), int(math.Round(s.y)), int(math.Round(s.x+s.w)), int(math.Round(s.y+s.h))), s.col)
		case 'c':
			disc(img, s.x, s.y, s.w, s.col)
		case 'l':
			for i := 1; i < len(s.pts); i++ {
				line(img, s.pts[i-1], s.pts[i], s.stroke, s.col)
			}
		case 't':
			face, err := faces.of(s.size)
			if err != nil {
				return err
			}
			text(img, face, s)
		}
	}
	return png.Encode(w, img)
}

// faces are the Go font at the sizes a drawing uses, made as needed.
type faces struct {
	font  *opentype.Font
	sizes map[float64]font.Face
}

func newFaces() (*faces, error) {
	f, err := opentype.Parse(goregular.TTF)
	if err != nil {
		return nil, fmt.Errorf("reading the Go font: %w", err)
	}
	return &faces{font: f, sizes: make(map[float64]font.Face)}, nil
}

// of returns the face whose em is size pixels (72 DPI: a point is a pixel,
// as in SVG).
func (f *faces) of(size float64) (font.Face, error) {
	if face, ok := f.sizes[size]; ok {
		return face, nil
	}
	face, err := opentype.NewFace(f.font, &opentype.FaceOptions{Size: size, DPI: 72, Hinting: font.HintingFull})
	if err != nil {
		return nil, fmt.Errorf("the Go font at %gpx: %w", size, err)
	}
	f.sizes[size] = face
	return face, nil
}

func (f *faces) close() {
	for _, face := range f.sizes {
		_ = face.Close()
	}
}

// text draws s.text with its baseline at s.y, anchored at s.x as SVG's
// text-anchor does.
func text(img *image.RGBA, face font.Face, s shape) {
	d := font.Drawer{Dst: img, Src: image.NewUniform(s.col), Face: face}
	x := fixed.Int26_6(math.Round(s.x * 64))
	switch s.anchor {
	case "middle":
		x -= d.MeasureString(s.text) / 2
	case "end":
		x -= d.MeasureString(s.text)
	}
	d.Dot = fixed.Point26_6{X: x, Y: fixed.Int26_6(math.Round(s.y * 64))}
	d.DrawString(s.text)
}

func fill(img *image.RGBA, r image.Rectangle, c color.RGBA) {
	r = r.Intersect(img.Bounds())
	for y := r.Min.Y; y < r.Max.Y; y++ {
		for x := r.Min.X; x < r.Max.X; x++ {
			img.SetRGBA(x, y, c)
		}
	}
}

func disc(img *image.RGBA, cx, cy, r float64, c color.RGBA) {
	for y := int(cy - r); y <= int(cy+r)+1; y++ {
		for x := int(cx - r); x <= int(cx+r)+1; x++ {
			dx, dy := float64(x)+0.5-cx, float64(y)+0.5-cy
			if dx*dx+dy*dy <= r*r && image.Pt(x, y).In(img.Bounds()) {
				img.SetRGBA(x, y, c)
			}
		}
	}
}

// line draws a segment of the given width by stamping squares along it.
func line(img *image.RGBA, a, b Point, width float64, c color.RGBA) {
	n := int(math.Max(math.Abs(b.X-a.X), math.Abs(b.Y-a.Y))) + 1
	half := math.Max(width/2, 0.5)
	for i := 0; i <= n; i++ {
		t := float64(i) / float64(n)
		x, y := a.X+(b.X-a.X)*t, a.Y+(b.Y-a.Y)*t
		fill(img, image.Rect(int(math.Floor(x-half+0.5)), int(math.Floor(y-half+0.5)), int(math.Floor(x+half+0.5)), int(math.Floor(y+half+0.5))), c)
	}
}
