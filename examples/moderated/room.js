// One instance per room. Until the moderator joins, the room plays music and
// participants are muted. The moderator presses *1 to mute everyone else and
// *2 to let them speak again.

// A little tune (tone: segments, frequency/milliseconds) played in a loop.
const WAIT_MUSIC = "tone:523/250,659/250,784/250,1047/500,0/1500";

/** @type {import('../../scenarios/switchboard').Conference} */
let conf;
/** @type {string | null} */
let moderatorId = null;
let music = false;

/** @type {import('../../scenarios/switchboard').Scenario} */
export default {
  onConference(room) {
    conf = room;
    conf.on("leave", (p) => {
      if (p.callId === moderatorId) {
        moderatorId = null;
        conf.say("The moderator has left.");
      }
    });
  },

  async onCall(call, ctx) {
    await call.answer();
    if (ctx.customData?.moderator) {
      await joinAsModerator(call);
      return;
    }
    if (moderatorId) {
      await call.say("Welcome. The meeting is in progress.");
      await conf.add(call);
      return;
    }
    await call.say("Welcome. Please wait for the moderator.");
    await conf.add(call, { muted: true });
    if (!music) {
      music = true;
      conf.play(WAIT_MUSIC, { loop: true }).then(() => (music = false));
    }
  },
};

/** @param {import('../../scenarios/switchboard').Call} call */
async function joinAsModerator(call) {
  moderatorId = call.id;
  const me = await conf.add(call);
  conf.stopMedia();
  await setOthersMuted(me, false);
  await conf.say("The moderator has joined.");
  let star = false;
  call.on("dtmf", async ({ digit }) => {
    if (star && (digit === "1" || digit === "2")) {
      await setOthersMuted(me, digit === "1");
      await conf.say(digit === "1" ? "Everyone else is muted." : "Everyone may speak.");
    }
    star = digit === "*";
  });
}

/**
 * @param {import('../../scenarios/switchboard').Participant} me
 * @param {boolean} muted
 */
async function setOthersMuted(me, muted) {
  for (const p of conf.participants) {
    if (p !== me) await (muted ? p.mute() : p.unmute());
  }
}
