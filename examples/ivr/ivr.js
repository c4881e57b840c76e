// A phone menu: press 1 for sales (dialed out and connected), 2 to hear the
// time. Wrong keys and silence are asked again, twice; then goodbye.
import { spokenTime } from "./speech.js";

// Where sales answers; a route or the HTTP API may pass another in customData.
const SALES_URI = "sip:sales@127.0.0.1:5070";

/** @type {import('../../scenarios/switchboard').Scenario} */
export default {
  async onCall(call, ctx) {
    await call.answer();
    await call.say("Thank you for calling Acme.");
    for (let round = 0; round < 5; round++) {
      const { digits, reason } = await call.collectDigits({
        prompt: "For sales, press 1. To hear the time, press 2.",
        invalidPrompt: "Sorry, that is not an option.",
        max: 1,
        pattern: "[12]",
        retries: 2,
        firstDigitTimeoutMs: 5000,
      });
      if (reason === "hangup") return;
      if (digits === "1") {
        await connectToSales(call, ctx.customData?.salesUri ?? SALES_URI);
        return;
      }
      if (digits === "2") {
        await call.say(`It is ${spokenTime(new Date())}.`);
        continue;
      }
      break; // no valid choice after the retries
    }
    await call.say("Goodbye.");
    await call.hangup();
  },
};

/**
 * Rings sales while the caller hears ringback, then connects them. When
 * either side hangs up, the other is hung up too.
 * @param {import('../../scenarios/switchboard').Call} call
 * @param {string} uri
 */
async function connectToSales(call, uri) {
  await call.say("Connecting you to sales.");
  const ringback = call.play("tone:ringback", { loop: true });
  let sales;
  try {
    sales = await call.dial(uri, { timeoutMs: 30000, headers: { "X-Caller": call.from } });
  } catch (error) {
    const failed = /** @type {import('../../scenarios/switchboard').DialError} */ (error);
    if (failed.name !== "DialError") throw error;
    console.log(`sales did not answer: ${failed.code} ${failed.reason}`);
  } finally {
    call.stopMedia();
    await ringback;
  }
  if (!sales) {
    await call.say("Sales cannot take your call right now. Please try again later.");
    await call.hangup();
    return;
  }
  await call.bridge(sales);
}
