package bench

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"
)

// Figure is one measured number, with the floor it is compared to.
type Figure struct {
	ID    string   `json:"id"`
	Name  string   `json:"name"`
	Unit  string   `json:"unit"`
	Value *float64 `json:"value"` // nil: not measured (Note says why)
	// Floor is the ID of the floor figure this one is compared to; FloorValue
	// and Ratio (Value / FloorValue) are filled in when both are known.
	Floor      string   `json:"floor,omitempty"`
	FloorValue *float64 `json:"floor_value,omitempty"`
	Ratio      *float64 `json:"ratio,omitempty"`
	// Target is issue 5's goal for this figure in words; Met says whether
	// this run reached it (absent when the figure has no target).
	Target string `json:"target,omitempty"`
	Met    *bool  `json:"met,omitempty"`
	// Ref is what the HarperDB peer clusterd replaces measured, for context.
	Ref  string `json:"ref,omitempty"`
	Note string `json:"note,omitempty"`

	check func(v, ratio float64, floors map[string]float64) (bool, string)
}

// Machine describes where the run happened.
type Machine struct {
	CPUs      int    `json:"cpus"`
	MemoryMB  int    `json:"memory_mb"`
	GoVersion string `json:"go_version"`
	OS        string `json:"os"`
	Load      string `json:"load_before"`
	LoadAfter string `json:"load_after"`
}

// Report is one run's results.
type Report struct {
	Command  string    `json:"command"`
	Quick    bool      `json:"quick"`
	Started  time.Time `json:"started"`
	Took     string    `json:"took"`
	Machine  Machine   `json:"machine"`
	Figures  []*Figure `json:"figures"`
	Failures []string  `json:"failures,omitempty"`
}

func (r *Report) byID() map[string]*Figure {
	m := map[string]*Figure{}
	for _, f := range r.Figures {
		m[f.ID] = f
	}
	return m
}

// finish fills in floor values, ratios and target outcomes.
func (r *Report) finish() {
	ids := r.byID()
	floors := map[string]float64{}
	for _, f := range r.Figures {
		if f.Value != nil {
			floors[f.ID] = *f.Value
		}
	}
	for _, f := range r.Figures {
		if f.Floor != "" {
			if fl, ok := ids[f.Floor]; ok && fl.Value != nil {
				f.FloorValue = ptr(*fl.Value)
				if f.Value != nil && *fl.Value != 0 {
					f.Ratio = ptr(*f.Value / *fl.Value)
				}
			}
		}
		if f.check != nil && f.Value != nil {
			ratio := math.NaN()
			if f.Ratio != nil {
				ratio = *f.Ratio
			}
			ok, text := f.check(*f.Value, ratio, floors)
			f.Met = &ok
			if text != "" {
				f.Target = text
			}
		}
	}
}

func ptr[T any](v T) *T { return &v }

func fmtNum(v float64) string {
	a := math.Abs(v)
	switch {
	case a == 0:
		return "0"
	case a >= 100:
		return fmt.Sprintf("%.0f", v)
	case a >= 10:
		return fmt.Sprintf("%.1f", v)
	case a >= 1:
		return fmt.Sprintf("%.2f", v)
	default:
		return fmt.Sprintf("%.3f", v)
	}
}

func (f *Figure) cells() []string {
	val, floor, ratio, met := "n/a", "", "", ""
	if f.Value != nil {
		val = fmtNum(*f.Value) + " " + f.Unit
	}
	if f.FloorValue != nil {
		floor = fmtNum(*f.FloorValue) + " " + f.Unit
	}
	if f.Ratio != nil {
		ratio = fmt.Sprintf("%.2f×", *f.Ratio)
	}
	if f.Met != nil {
		met = "met"
		if !*f.Met {
			met = "MISSED"
		}
	} else if f.Target != "" {
		met = "-"
	}
	return []string{f.Name, val, floor, ratio, f.Target, met, f.Ref}
}

var header = []string{"figure", "value", "floor", "ratio", "target", "", "HarperDB"}

// WriteText prints the results as an aligned table.
func (r *Report) WriteText(w io.Writer) {
	rows := [][]string{header}
	for _, f := range r.Figures {
		rows = append(rows, f.cells())
	}
	width := make([]int, len(header))
	for _, row := range rows {
		for i, c := range row {
			width[i] = max(width[i], len([]rune(c)))
		}
	}
	for _, row := range rows {
		var b strings.Builder
		for i, c := range row {
			b.WriteString(c)
			if i < len(row)-1 {
				b.WriteString(strings.Repeat(" ", width[i]-len([]rune(c))+2))
			}
		}
		fmt.Fprintln(w, strings.TrimRight(b.String(), " "))
	}
	for _, f := range r.Figures {
		if f.Note != "" {
			fmt.Fprintf(w, "  %s: %s\n", f.Name, f.Note)
		}
	}
	for _, e := range r.Failures {
		fmt.Fprintln(w, "FAILED:", e)
	}
}

// Markdown renders the results as a markdown document.
func (r *Report) Markdown() string {
	var b strings.Builder
	fmt.Fprintf(&b, "Command: `%s`  \n", r.Command)
	fmt.Fprintf(&b, "Machine: %d CPUs, %d MB memory, %s, %s; load average before %s, after %s  \n",
		r.Machine.CPUs, r.Machine.MemoryMB, r.Machine.GoVersion, r.Machine.OS, r.Machine.Load, r.Machine.LoadAfter)
	fmt.Fprintf(&b, "Started %s, took %s.\n\n", r.Started.UTC().Format(time.RFC3339), r.Took)
	b.WriteString("| " + strings.Join(header, " | ") + " |\n")
	b.WriteString("|" + strings.Repeat(" --- |", len(header)) + "\n")
	for _, f := range r.Figures {
		c := f.cells()
		for i := range c {
			c[i] = strings.ReplaceAll(c[i], "|", "\\|")
		}
		b.WriteString("| " + strings.Join(c, " | ") + " |\n")
	}
	var notes []string
	for _, f := range r.Figures {
		if f.Note != "" {
			notes = append(notes, fmt.Sprintf("- **%s**: %s", f.Name, f.Note))
		}
	}
	if len(notes) > 0 {
		b.WriteString("\n" + strings.Join(notes, "\n") + "\n")
	}
	for _, e := range r.Failures {
		fmt.Fprintf(&b, "\nFAILED: %s\n", e)
	}
	return b.String()
}

// Save writes results.json and results.md into dir.
func (r *Report) Save(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	js, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "results.json"), append(js, '\n'), 0o644); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "results.md"), []byte(r.Markdown()), 0o644)
}

func machine() Machine {
	m := Machine{CPUs: runtime.NumCPU(), GoVersion: runtime.Version(), OS: runtime.GOOS + "/" + runtime.GOARCH, Load: loadAvg()}
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		var kb int
		for _, line := range strings.Split(string(b), "\n") {
			if _, err := fmt.Sscanf(line, "MemTotal: %d kB", &kb); err == nil {
				m.MemoryMB = kb / 1024
				break
			}
		}
	}
	return m
}

func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}
