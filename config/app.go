package config

import (
	"encoding/json"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// Kind is the type of an application setting's value.
type Kind int

// Kinds of application settings.
const (
	KindString Kind = iota
	KindDuration
	KindInt
	KindBool
)

// Setting is one of an application's own settings (ringleader.App.Settings). Like
// the node's built-in settings it has one name in three spellings: the flag
// --transfer-timeout, the environment variable RL_TRANSFER_TIMEOUT and the file key
// "transfer_timeout". Build one with String, Duration, Int or Bool.
type Setting struct {
	// Name is the flag name: lower-case words joined by '-'.
	Name string
	// Usage is the flag's help text.
	Usage string
	// Kind is the value's type; values that do not parse as it are refused at load.
	Kind Kind
	// Default is the value when nothing sets it, in the flag's spelling ("5m").
	Default string
}

// String is a text setting.
func String(name, def, usage string) Setting {
	return Setting{Name: name, Usage: usage, Kind: KindString, Default: def}
}

// Duration is a duration setting, written like 5s, 500ms or 1h30m.
func Duration(name string, def time.Duration, usage string) Setting {
	return Setting{Name: name, Usage: usage, Kind: KindDuration, Default: def.String()}
}

// Int is a whole-number setting.
func Int(name string, def int, usage string) Setting {
	return Setting{Name: name, Usage: usage, Kind: KindInt, Default: strconv.Itoa(def)}
}

// Bool is a true/false setting.
func Bool(name string, def bool, usage string) Setting {
	return Setting{Name: name, Usage: usage, Kind: KindBool, Default: strconv.FormatBool(def)}
}

// env is the setting's environment variable.
func (s Setting) env() string { return envName(s.Name) }

// fileKey is the setting's key in a configuration file.
func (s Setting) fileKey() string { return strings.ReplaceAll(s.Name, "-", "_") }

// parse converts v to the setting's kind, with an error a user can act on.
func (s Setting) parse(v string) (any, error) {
	switch s.Kind {
	case KindString:
		return v, nil
	case KindDuration:
		d, err := time.ParseDuration(v)
		if err != nil {
			return nil, fmt.Errorf("%q is not a duration such as 5s or 500ms", v)
		}
		return d, nil
	case KindInt:
		n, err := strconv.Atoi(v)
		if err != nil {
			return nil, fmt.Errorf("%q is not a whole number", v)
		}
		return n, nil
	case KindBool:
		b, err := strconv.ParseBool(v)
		if err != nil {
			return nil, fmt.Errorf("%q is not true or false", v)
		}
		return b, nil
	}
	return nil, fmt.Errorf("unknown setting kind %d", s.Kind)
}

var settingName = regexp.MustCompile(`^[a-z][a-z0-9]*(-[a-z0-9]+)*$`)

// checkAppSettings reports application settings that are badly named, named twice,
// named like a built-in setting, or whose default does not parse.
func checkAppSettings(app []Setting) error {
	builtin := map[string]bool{"config": true}
	for _, s := range settings() {
		builtin[s.name] = true
	}
	seen := map[string]bool{}
	for _, s := range app {
		switch {
		case !settingName.MatchString(s.Name):
			return fmt.Errorf("config: application setting %q: a name is lower-case words joined by '-'", s.Name)
		case builtin[s.Name]:
			return fmt.Errorf("config: application setting %q has the name of a built-in setting", s.Name)
		case seen[s.Name]:
			return fmt.Errorf("config: application setting %q is declared twice", s.Name)
		}
		seen[s.Name] = true
		if _, err := s.parse(s.Default); err != nil {
			return fmt.Errorf("config: application setting %q: default %w", s.Name, err)
		}
	}
	return nil
}

// takeAppKeys removes the application settings' keys from a configuration file's
// object and returns their values as text (a JSON string's content, or the JSON of
// a number or boolean).
func takeAppKeys(obj map[string]json.RawMessage, app []Setting) map[string]string {
	out := map[string]string{}
	for _, s := range app {
		raw, ok := obj[s.fileKey()]
		if !ok {
			continue
		}
		delete(obj, s.fileKey())
		var text string
		if json.Unmarshal(raw, &text) != nil {
			text = string(raw)
		}
		out[s.Name] = text
	}
	return out
}

// Values are an application's settings as loaded (Config.App): the defaults,
// overridden by the file, the environment and the flags, in that order. A Values is
// read-only and safe for concurrent use. Asking for a setting the application did
// not declare, or as another kind than declared, is a programming error and panics.
type Values struct {
	values map[string]any
}

// get returns the value of setting name, checking its kind.
func (v Values) get(name string, kind Kind) any {
	val, ok := v.values[name]
	if !ok {
		panic(fmt.Sprintf("config: no application setting %q is declared", name))
	}
	var fits bool
	switch kind {
	case KindString:
		_, fits = val.(string)
	case KindDuration:
		_, fits = val.(time.Duration)
	case KindInt:
		_, fits = val.(int)
	case KindBool:
		_, fits = val.(bool)
	}
	if !fits {
		panic(fmt.Sprintf("config: application setting %q is a %T, not the kind asked for", name, val))
	}
	return val
}

// String returns the text setting name.
func (v Values) String(name string) string { return v.get(name, KindString).(string) }

// Duration returns the duration setting name.
func (v Values) Duration(name string) time.Duration {
	return v.get(name, KindDuration).(time.Duration)
}

// Int returns the whole-number setting name.
func (v Values) Int(name string) int { return v.get(name, KindInt).(int) }

// Bool returns the true/false setting name.
func (v Values) Bool(name string) bool { return v.get(name, KindBool).(bool) }

// WithDefaults returns v completed with the defaults of the settings it has no value
// for, so that a Config built without Load (Defaults, then fields set by a test or a
// benchmark) still answers for every declared setting.
func (v Values) WithDefaults(settings ...Setting) (Values, error) {
	if err := checkAppSettings(settings); err != nil {
		return Values{}, err
	}
	out := Values{values: make(map[string]any, len(settings))}
	for name, val := range v.values {
		out.values[name] = val
	}
	for _, s := range settings {
		if _, ok := out.values[s.Name]; ok {
			continue
		}
		val, err := s.parse(s.Default)
		if err != nil {
			return Values{}, fmt.Errorf("config: application setting %q: default %w", s.Name, err)
		}
		out.values[s.Name] = val
	}
	return out, nil
}
