// Asks for the room code, then for the moderator PIN (participants just
// press pound), and sends the caller to the room.

// The moderator PIN; a route or the HTTP API may pass another in customData.
const MODERATOR_PIN = "4321";

/** @type {import('../../scenarios/switchboard').Scenario} */
export default {
  async onCall(call, ctx) {
    await call.answer();
    const room = await call.collectDigits({
      prompt: "Welcome. Enter your room code, then press pound.",
      invalidPrompt: "Sorry, I did not get that.",
      min: 1,
      max: 12,
      retries: 2,
      firstDigitTimeoutMs: 8000,
    });
    if (room.reason !== "terminator" && room.reason !== "max") {
      if (room.reason !== "hangup") await call.hangup();
      return;
    }
    const pin = await call.collectDigits({
      prompt: "If you are the moderator, enter your PIN, then press pound. Otherwise, press pound.",
      min: 0,
      max: 8,
      firstDigitTimeoutMs: 8000,
    });
    if (pin.reason === "hangup") return;
    const moderator = pin.digits !== "" && pin.digits === (ctx.customData?.moderatorPin ?? MODERATOR_PIN);
    if (pin.digits !== "" && !moderator) {
      await call.say("That PIN is not right. You are joining as a participant.");
    }
    await call.routeTo(`room_${room.digits}`, { customData: { moderator } });
  },
};
