// Helpers of the ivr application (imported by ivr.js; not a scenario itself).

/**
 * A time the way people say it: "9:05 AM".
 * @param {Date} date
 * @returns {string}
 */
export function spokenTime(date) {
  const hours = date.getHours();
  const minutes = String(date.getMinutes()).padStart(2, "0");
  return `${hours % 12 || 12}:${minutes} ${hours < 12 ? "AM" : "PM"}`;
}
