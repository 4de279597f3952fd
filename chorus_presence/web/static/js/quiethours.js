// Settings -> Presence -> Quiet hours: the weekly schedule of states (urn:chorus:presence:0
// quiet-hours), one row a slot: the days it starts on, from and to in the user's time zone, a
// state and optional text. The server checks the schedule; its refusal names the slot.

import { STATES } from "./chorus.js";
import { $, announce, flash, h } from "./dom.js";
import { NS, child, children, x } from "./xml.js";

const DAYS = [
  { id: "mon-fri", label: "Weekdays" },
  { id: "sat-sun", label: "Weekends" },
  { id: "daily", label: "Every day" },
  { id: "mon", label: "Monday" },
  { id: "tue", label: "Tuesday" },
  { id: "wed", label: "Wednesday" },
  { id: "thu", label: "Thursday" },
  { id: "fri", label: "Friday" },
  { id: "sat", label: "Saturday" },
  { id: "sun", label: "Sunday" },
];

// A time input cannot say 24:00: "to 00:00" is the midnight that ends the day, as 24:00 is.
const END_OF_DAY = "24:00";

function slotsOf(result) {
  return children(child(result, "quiet-hours", NS.state), "slot", NS.state).map((slot) => ({
    days: slot.getAttribute("days"),
    start: slot.getAttribute("start"),
    end: slot.getAttribute("end"),
    state: slot.getAttribute("state"),
    text: slot.textContent,
  }));
}

export async function getQuietHours(client) {
  return slotsOf(await client.iq("get", x("quiet-hours", { xmlns: NS.state })));
}

/** Replaces the schedule; the server's refusal (an overlap, a slot with no length) is thrown. */
export async function setQuietHours(client, slots) {
  const nodes = slots.map(({ days, start, end, state, text }) =>
    x("slot", { days, start, end, state }, text || null),
  );
  return slotsOf(await client.iq("set", x("quiet-hours", { xmlns: NS.state }, nodes)));
}

function options(choices, current) {
  const known = choices.some((choice) => choice.id === current);
  const all = known || !current ? choices : [...choices, { id: current, label: current }];
  return all.map(({ id, label }) => h("option", { value: id, selected: id === current }, label));
}

export class QuietHoursSettings {
  constructor(session) {
    this.session = session;
    this.form = $("#quiet-hours-form");
    this.rows = $("#quiet-hours-rows");
    $("#add-quiet-slot").addEventListener("click", () => {
      this.rows.append(this.#row({ days: "mon-fri", start: "18:00", end: "08:00", state: "dnd" }));
      this.#number();
      this.rows.lastElementChild.querySelector("select").focus();
    });
    this.form.addEventListener("submit", (event) => {
      event.preventDefault();
      this.#save();
    });
    this.form.addEventListener("input", () => flash($("#quiet-hours-result"), ""));
  }

  async load() {
    this.#show(await getQuietHours(this.session.client));
  }

  #show(slots) {
    this.rows.replaceChildren(...slots.map((slot) => this.#row(slot)));
    this.#number();
  }

  #row(slot) {
    const end = slot.end === END_OF_DAY ? "00:00" : slot.end;
    const field = (name, label, control) =>
      h("div", { class: `quiet-field quiet-${name}` }, h("span", { "aria-hidden": "true" }, label), control);
    return h(
      "li",
      { class: "quiet-slot" },
      field("days", "Days", h("select", { "data-field": "days" }, options(DAYS, slot.days))),
      field("start", "From", h("input", { type: "time", "data-field": "start", value: slot.start, required: true })),
      field("end", "To", h("input", { type: "time", "data-field": "end", value: end, required: true })),
      field("state", "State", h("select", { "data-field": "state" }, options(STATES, slot.state))),
      field(
        "text",
        "Text",
        h("input", { type: "text", "data-field": "text", value: slot.text || "", maxlength: 1024 }),
      ),
      h(
        "button",
        {
          type: "button",
          class: "button quiet quiet-remove",
          onclick: (event) => {
            event.currentTarget.closest("li").remove();
            this.#number();
            flash($("#quiet-hours-result"), "");
            $("#add-quiet-slot").focus();
          },
        },
        "Remove",
      ),
    );
  }

  /** Names each row's controls after its place, for screen readers and the error texts. */
  #number() {
    const labels = { days: "Days", start: "From", end: "To", state: "State", text: "Text" };
    [...this.rows.children].forEach((row, index) => {
      for (const control of row.querySelectorAll("[data-field]")) {
        control.setAttribute("aria-label", `${labels[control.dataset.field]}, slot ${index + 1}`);
      }
      row.querySelector("button").setAttribute("aria-label", `Remove slot ${index + 1}`);
    });
    $("#quiet-hours-empty").hidden = this.rows.children.length > 0;
  }

  #read() {
    return [...this.rows.children].map((row) => {
      const value = (field) => row.querySelector(`[data-field='${field}']`).value;
      const end = value("end");
      return {
        days: value("days"),
        start: value("start"),
        end: end === "00:00" ? END_OF_DAY : end,
        state: value("state"),
        text: value("text").trim(),
      };
    });
  }

  async #save() {
    const result = $("#quiet-hours-result");
    try {
      const stored = await setQuietHours(this.session.client, this.#read());
      this.#show(stored);
      const said = stored.length ? "Quiet hours saved." : "Quiet hours saved: none.";
      flash(result, said);
      announce(said);
    } catch (error) {
      flash(result, `Not saved: ${error.message}`, "error");
    }
  }
}
