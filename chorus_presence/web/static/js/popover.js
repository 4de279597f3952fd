// Header popovers: disclosure buttons whose panels open below them, always inside the
// window whatever its width, and close on Escape, a click elsewhere or focus leaving them.

const MARGIN_PX = 8;
const GAP_PX = 6;

/** Puts the panel under its button, right edges aligned, moved or narrowed to fit the window. */
function place(button, panel) {
  const viewport = document.documentElement.clientWidth;
  const below = button.getBoundingClientRect();
  panel.style.maxWidth = `${viewport - 2 * MARGIN_PX}px`;
  panel.style.top = `${below.bottom + GAP_PX}px`;
  panel.style.maxHeight = `${window.innerHeight - below.bottom - GAP_PX - MARGIN_PX}px`;
  const width = panel.getBoundingClientRect().width;
  const left = Math.min(Math.max(MARGIN_PX, below.right - width), viewport - MARGIN_PX - width);
  panel.style.left = `${left}px`;
}

export function popover(button, panel, { onOpen } = {}) {
  const reposition = () => place(button, panel);
  const close = ({ restoreFocus = false } = {}) => {
    if (panel.hidden) return;
    panel.hidden = true;
    button.setAttribute("aria-expanded", "false");
    window.removeEventListener("resize", reposition);
    if (restoreFocus) button.focus();
  };
  const open = () => {
    panel.hidden = false;
    button.setAttribute("aria-expanded", "true");
    place(button, panel);
    window.addEventListener("resize", reposition);
    onOpen?.();
  };
  button.addEventListener("click", () => (panel.hidden ? open() : close()));
  panel.addEventListener("keydown", (event) => {
    if (event.key === "Escape") {
      event.stopPropagation();
      close({ restoreFocus: true });
    }
  });
  document.addEventListener("click", (event) => {
    if (!panel.hidden && !panel.contains(event.target) && !button.contains(event.target)) close();
  });
  panel.addEventListener("focusout", (event) => {
    if (event.relatedTarget && !panel.contains(event.relatedTarget) && event.relatedTarget !== button) {
      close();
    }
  });
  return { open, close };
}
