// The gateway: greet the caller, collect a conference code, send them to the room.
/** @type {import('../../scenarios/switchboard').Scenario} */
export default {
  async onCall(call, ctx) {
    await call.answer();
    for (let attempt = 0; attempt < 3; attempt++) {
      const { digits, reason } = await call.collectDigits({
        prompt:
          attempt === 0
            ? "Welcome. Enter your conference code, then press pound."
            : "Please enter your conference code, then press pound.",
        min: 1,
        max: 16,
        terminators: "#",
        firstDigitTimeoutMs: 10000,
        interDigitTimeoutMs: 5000,
      });
      if (reason === "hangup") return;
      if (digits.length > 0) {
        console.log(`conference code ${digits} (${reason})`);
        await call.routeTo("conf_" + digits);
        return;
      }
    }
    await call.say("Sorry, no code was entered. Goodbye.");
    await call.hangup();
  },
};
