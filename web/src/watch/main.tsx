import { render } from 'preact';
import '../shared/base.css';
import { Header } from '../shared/header';
import { pageTitle } from '../shared/site';

document.title = pageTitle();
render(
  <>
    <Header />
    <main id="main" />
  </>,
  document.getElementById('app')!,
);
