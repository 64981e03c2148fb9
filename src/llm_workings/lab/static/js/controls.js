// Controls built from the server's settings table: a label, the help text as a tooltip,
// and an input whose kind and range come from the table. Nothing here knows a setting
// by name except where the page places it.

const SLIDER_STEPS = 1000;

function sliderFor(setting) {
  // A slider only where its range is small enough to be dragged through usefully.
  return setting.kind !== "choice" && setting.min !== null && setting.max !== null && (setting.log_scale || setting.max - setting.min <= 5000);
}

function toSlider(setting, value) {
  const { min, max } = setting;
  const t = setting.log_scale ? Math.log(value / min) / Math.log(max / min) : (value - min) / (max - min);
  return Math.round(Math.max(0, Math.min(1, t)) * SLIDER_STEPS);
}

function fromSlider(setting, position) {
  const { min, max } = setting;
  const t = position / SLIDER_STEPS;
  if (setting.kind === "int") return Math.round(min + t * (max - min));
  const v = setting.log_scale ? min * (max / min) ** t : min + t * (max - min);
  return Number(v.toPrecision(2)); // round numbers are easier to read and to share
}

export class Controls {
  // containers: {group name -> element}; onChange(name, value) gets a number or, if the
  // text does not parse, the raw text, which the server then refuses by name.
  constructor(schema, containers, onChange) {
    this.schema = schema;
    this.onChange = onChange;
    this.inputs = {};
    for (const setting of schema.settings) {
      if (setting.kind === "int_list") continue; // layer sizes: the network view's + and − buttons
      const container = containers[setting.name] ?? containers[setting.group];
      if (!container) continue;
      container.append(this.build(setting));
    }
  }

  build(setting) {
    const wrap = document.createElement("div");
    wrap.className = `control control-${setting.kind}`;
    wrap.dataset.name = setting.name;
    const id = `control-${setting.name}`;
    const label = document.createElement("label");
    label.htmlFor = id;
    label.textContent = setting.label;
    label.title = setting.help;
    wrap.title = setting.help;
    wrap.append(label);
    const row = document.createElement("div");
    row.className = "control-row";
    wrap.append(row);
    if (setting.kind === "choice") {
      const select = document.createElement("select");
      select.id = id;
      select.name = setting.name;
      for (const c of setting.choices) select.append(new Option(c, c));
      select.addEventListener("change", () => this.onChange(setting.name, select.value));
      row.append(select);
      this.inputs[setting.name] = { setting, select };
      return wrap;
    }
    const box = document.createElement("input");
    box.id = id;
    box.name = setting.name;
    box.type = "text";
    box.inputMode = setting.kind === "int" ? "numeric" : "decimal";
    box.className = "number";
    box.setAttribute("aria-describedby", `${id}-help`);
    const help = Object.assign(document.createElement("span"), { id: `${id}-help`, className: "visually-hidden", textContent: setting.help });
    let slider = null;
    if (sliderFor(setting)) {
      slider = document.createElement("input");
      slider.type = "range";
      slider.min = "0";
      slider.max = String(SLIDER_STEPS);
      slider.step = setting.kind === "int" && !setting.log_scale ? String(Math.max(1, Math.round(SLIDER_STEPS / (setting.max - setting.min)))) : "1";
      slider.setAttribute("aria-label", setting.label);
      slider.tabIndex = -1; // the text box is the keyboard's way in
      slider.addEventListener("input", () => (box.value = String(fromSlider(setting, Number(slider.value)))));
      slider.addEventListener("change", () => this.onChange(setting.name, fromSlider(setting, Number(slider.value))));
      row.append(slider);
    }
    box.addEventListener("change", () => {
      const text = box.value.trim();
      const value = /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/.test(text) ? Number(text) : text;
      this.onChange(setting.name, value);
    });
    row.append(box, help);
    this.inputs[setting.name] = { setting, box, slider };
    return wrap;
  }

  // Show these values (without firing changes).
  set(settings) {
    for (const [name, input] of Object.entries(this.inputs)) {
      const value = settings[name];
      if (value === undefined) continue;
      // Writing an input, even with its own value, costs a layout: write only changes.
      if (input.select) {
        if (input.select.value !== String(value)) input.select.value = String(value);
        continue;
      }
      if (document.activeElement !== input.box && input.box.value !== String(value)) input.box.value = String(value);
      const position = typeof value === "number" ? String(toSlider(input.setting, value)) : null;
      if (input.slider && position !== null && input.slider.value !== position) input.slider.value = position;
    }
  }

  // Offer only the losses that fit the chosen output.
  limitChoices(name, allowed) {
    const input = this.inputs[name];
    if (!input?.select) return;
    const current = input.select.value;
    if ([...input.select.options].map((o) => o.value).join() === allowed.join()) return;
    input.select.replaceChildren(...allowed.map((c) => new Option(c, c)));
    input.select.value = allowed.includes(current) ? current : allowed[0];
  }

  // Mark the control the server named in an error.
  flag(name) {
    for (const el of document.querySelectorAll(".control.invalid")) el.classList.remove("invalid");
    const input = this.inputs[name];
    (input?.select ?? input?.box)?.closest(".control")?.classList.add("invalid");
  }
}
