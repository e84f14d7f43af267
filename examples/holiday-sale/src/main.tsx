import { createHallpassClient } from '@hallpass/client';
import { HallpassProvider } from '@hallpass/react';
import '@hallpass/react/theme.css';
import { StrictMode } from 'react';
import { createRoot } from 'react-dom/client';
import { App } from './app.tsx';
import './app.css';

// Same origin as the API: no base URL, cookies just work. Without realtime (or while it is down) the
// session is re-checked every few seconds so a device signed out elsewhere still notices quickly.
const hallpass = createHallpassClient({ sessionCheckIntervalMs: 3000 });
// A handle for the browser console and the browser tests; it can do nothing a page script cannot.
(window as unknown as { hallpass: typeof hallpass }).hallpass = hallpass;

createRoot(document.getElementById('root')!).render(
  <StrictMode>
    <HallpassProvider client={hallpass}>
      <App />
    </HallpassProvider>
  </StrictMode>,
);
