// A show as the API answers it (`GET /api/shows`, `GET /api/shows/{id}`: src/http/shows.rs).

export interface Show {
  id: string;
  title: string;
  description: string;
  host: string;
  stream: string;
  scheduled_start: string;
  cover_image_url: string | null;
  tags: string[];
  products: string[];
  state: 'scheduled' | 'live' | 'ended';
  started_at: string | null;
  ended_at: string | null;
  playback_url: string;
  /** The recording of an ended show, else null. */
  replay: { recording: string; playlist: string } | null;
  /** People watching now (distinct `view_show` heartbeats in the last minute). */
  viewers?: number;
}
