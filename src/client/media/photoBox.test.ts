import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { PHOTO_BOX_MAX, PHOTO_BOX_MIN, photoBox } from './photoBox';

describe('photoBox', () => {
  it('MD7 the box follows the signed size: scaled to fit PHOTO_BOX_MAX, never upscaled, never below PHOTO_BOX_MIN', () => {
    assert.deepEqual(photoBox(1600, 1200), { width: PHOTO_BOX_MAX, height: 240 });
    assert.deepEqual(photoBox(1200, 1600), { width: 240, height: PHOTO_BOX_MAX });
    assert.deepEqual(photoBox(100, 80), { width: 100, height: 80 });
    assert.deepEqual(photoBox(1, 4000), { width: PHOTO_BOX_MIN, height: PHOTO_BOX_MAX });
  });
});
