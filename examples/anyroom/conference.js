// One instance per room (the rule has conference = true): every call routed to
// conf_<code> lands here and joins the same conference.
/** @type {import('../../scenarios/switchboard').Conference} */
let room;

/** @type {import('../../scenarios/switchboard').Scenario} */
export default {
  async onConference(conf, ctx) {
    room = conf;
    console.log(`room ${conf.name} opened`);
    conf.on("join", (p) => console.log(`${p.callId} joined; ${conf.size} on the call`));
    conf.on("leave", (p) => console.log(`${p.callId} left; ${conf.size} on the call`));
    conf.on("empty", () => console.log(`room ${conf.name} is empty`));
  },

  async onCall(call, ctx) {
    await call.answer();
    const others = room.size;
    await call.say(
      others === 0
        ? "You are the first participant."
        : `${others + 1} participants are on the call.`,
    );
    await room.add(call);
  },
};
