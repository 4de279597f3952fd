// Moments as people say them: "at 14:05" today, "yesterday at 09:12", "on 3 Dec" before that.

function sameDay(first, second) {
  return (
    first.getFullYear() === second.getFullYear() &&
    first.getMonth() === second.getMonth() &&
    first.getDate() === second.getDate()
  );
}

export function clockTime(date) {
  return date.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
}

/** "at 14:05", "yesterday at 14:05" or "on 3 Dec" (with the year when it is not this one). */
export function moment(date, now = new Date()) {
  if (sameDay(date, now)) return `at ${clockTime(date)}`;
  const yesterday = new Date(now);
  yesterday.setDate(now.getDate() - 1);
  if (sameDay(date, yesterday)) return `yesterday at ${clockTime(date)}`;
  const options = { day: "numeric", month: "short" };
  if (date.getFullYear() !== now.getFullYear()) options.year = "numeric";
  return `on ${date.toLocaleDateString([], options)}`;
}

/** "since 14:05", "since yesterday at 14:05" or "since 3 Dec". */
export function since(date, now = new Date()) {
  return `since ${moment(date, now).replace(/^(at|on) /, "")}`;
}

/** "until 14:30" today, "until Tue 00:00" within a week, "until 3 Dec" later. */
export function until(date, now = new Date()) {
  if (sameDay(date, now)) return `until ${clockTime(date)}`;
  const inAWeek = new Date(now);
  inAWeek.setDate(now.getDate() + 7);
  if (date < inAWeek) {
    return `until ${date.toLocaleDateString([], { weekday: "short" })} ${clockTime(date)}`;
  }
  return `until ${date.toLocaleDateString([], { day: "numeric", month: "short" })}`;
}

/**
 * How long ago, as people say it: "just now", "5 min ago", "2 h ago" within a day, then
 * "yesterday at 09:12" or "on 3 Dec".
 */
export function ago(date, now = new Date()) {
  const minutes = Math.floor((now - date) / 60_000);
  if (minutes < 1) return "just now";
  if (minutes < 60) return `${minutes} min ago`;
  if (minutes < 24 * 60) return `${Math.floor(minutes / 60)} h ago`;
  return moment(date, now);
}
