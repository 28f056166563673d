// Drives sora serve with the official openai npm client: every Videos API call it makes, as a user would.
// Run by tests/Server/OpenAiClientTests.cs: SORA_BASE_URL (…/v1) and SORA_API_KEY in the environment.
// Prints one JSON object of what it saw; any failed check throws and exits non-zero.
import assert from 'node:assert/strict';
import OpenAI, { AuthenticationError, NotFoundError, ConflictError, BadRequestError, toFile } from 'openai';

const baseURL = process.env.SORA_BASE_URL;
const apiKey = process.env.SORA_API_KEY;
const client = new OpenAI({ baseURL, apiKey, maxRetries: 0, timeout: 60_000 });
const prompt = 'a blue square moving down on a yellow background';
const seen = {};

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function finished(video) {
  const deadline = Date.now() + 60_000;
  for (;;) {
    const v = await client.videos.retrieve(video.id);
    assert.equal(v.object, 'video');
    assert.ok(v.progress >= 0 && v.progress <= 100);
    if (v.status === 'completed' || v.status === 'failed') {
      assert.equal(v.status, 'completed', JSON.stringify(v.error));
      return v;
    }
    assert.ok(Date.now() < deadline, `${v.id} still ${v.status}`);
    await sleep(50);
  }
}

async function bytes(id, variant) {
  const response = await client.videos.downloadContent(id, variant ? { variant } : undefined);
  return { type: response.headers.get('content-type'), data: Buffer.from(await response.arrayBuffer()) };
}

// create (a multipart form) → poll retrieve → downloadContent
const created = await client.videos.create({ prompt, seconds: '1', size: '32x32', steps: 2, seed: 7 });
assert.equal(created.status, 'queued');
assert.match(created.id, /^video_/);
const video = await finished(created);
assert.equal(video.size, '32x32');
assert.equal(video.seconds, '1');
const content = await bytes(video.id);
const isGif = content.data.subarray(0, 4).toString('latin1') === 'GIF8';
const isMp4 = content.data.subarray(4, 8).toString('latin1') === 'ftyp';
assert.ok(isGif || isMp4, `content is neither GIF nor MP4: ${content.type}`);
seen.content = { type: content.type, bytes: content.data.length };
const thumbnail = await bytes(video.id, 'thumbnail');
assert.equal(thumbnail.type, 'image/png');
assert.equal(thumbnail.data.readUInt32BE(0), 0x89504e47);

// input_reference: an image upload (the thumbnail just downloaded)
const fromImage = await finished(await client.videos.create({
  prompt, seconds: '1', size: '32x32', steps: 2, seed: 8,
  input_reference: await toFile(thumbnail.data, 'reference.png', { type: 'image/png' }),
}));
seen.image_to_video = fromImage.id;

// remix (JSON), edit (by id and by upload), extend (by id)
const remix = await finished(await client.videos.remix(video.id, { prompt: 'a red circle moving right on a blue background', steps: 3 }));
assert.equal(remix.remixed_from_video_id, video.id);
const edit = await finished(await client.videos.edit({ prompt, video: { id: video.id }, steps: 3 }));
const clipName = isGif ? 'clip.gif' : 'clip.mp4';
const editUpload = await finished(await client.videos.edit({
  prompt, steps: 3, video: await toFile(content.data, clipName, { type: content.type }),
}));
const extension = await finished(await client.videos.extend({ prompt, seconds: '1', video: { id: video.id }, steps: 2 }));
assert.equal(extension.seconds, '2');
seen.conditioned = { remix: remix.id, edit: edit.id, edit_upload: editUpload.id, extension: extension.id };

// list: one page, then every page through the client's own cursor handling
const page = await client.videos.list({ limit: 2 });
assert.equal(page.data.length, 2);
assert.equal(page.has_more, true);
const all = [];
for await (const v of client.videos.list({ limit: 2, order: 'asc' })) all.push(v.id);
assert.deepEqual(all, [video.id, fromImage.id, remix.id, edit.id, editUpload.id, extension.id]);
seen.listed = all.length;

// errors through the client's own error classes
const slow = await client.videos.create({ prompt, seconds: '1', steps: 200 });
await assert.rejects(client.videos.downloadContent(slow.id), (e) => e instanceof ConflictError && e.status === 409);
const deletedSlow = await client.videos.delete(slow.id);
assert.deepEqual(deletedSlow, { id: slow.id, object: 'video.deleted', deleted: true });
await assert.rejects(client.videos.create({ prompt, size: 'huge' }), (e) => e instanceof BadRequestError && e.param === 'size');

// delete
const deleted = await client.videos.delete(remix.id);
assert.equal(deleted.deleted, true);
await assert.rejects(client.videos.retrieve(remix.id), (e) => e instanceof NotFoundError && e.status === 404);

// a wrong API key
const stranger = new OpenAI({ baseURL, apiKey: 'sk-wrong', maxRetries: 0 });
await assert.rejects(stranger.videos.list(), (e) => {
  seen.wrong_key = { status: e.status, code: e.code, type: e.type };
  return e instanceof AuthenticationError && e.status === 401;
});

console.log(JSON.stringify(seen));
